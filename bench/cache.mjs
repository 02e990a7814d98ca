// `pnpm bench:cache` (issue 15): pulls through a pull-through cache rule on loopback, against
// CNCF Distribution (Debian's docker-registry, no auth) as the upstream and a Meridian node (built
// CLI, own process, fs storage, auth off) with one rule `hub/*` → `<distribution>/bench/*`.
//
//   node bench/cache.mjs [--runs=N] [--layers=N] [--layer-mib=N] [--clients=N] [--out=FILE]
//
// 1. Cold pull through the rule (a fresh image each run) against a direct pull of the same kind
//    of image from Distribution (target ≤ 1.2×): on loopback (what the node's CPU adds per
//    byte), and with the upstream behind a WAN-like link (bench/lib/wan-link.mjs: `--wan-ms`
//    one-way delay, `--wan-mbps` MB/s shared; both pulls cross the same link), as a registry
//    on the internet is. Beside them, in the same runs, a pull through a bare Node forwarding
//    proxy (bench/lib/bare-proxy.mjs: no hash, no spool, no store): what any Node process in
//    the middle costs on loopback on this machine — the ceiling the loopback row is read against.
// 2. Warm pull through the rule (the image is cached: the cold pull's copy is stored) against a
//    plain pull of content pushed to Meridian (target ≈ 1.0×).
// 3. `--clients` (default 100) concurrent cold pulls of one image: the requests that reach the
//    upstream, counted by a forwarding proxy in front of Distribution (target: one per blob).
// A pull is the manifest, then every blob (3 at a time, as docker does), bodies read and dropped.
// Prints JSON; with --out, writes a Markdown table too. Needs `pnpm build` and docker-registry.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { parseArgs } from 'node:util';
import { makeImage, memBlob, MiB } from './lib/content.mjs';
import { randomBytes } from 'node:crypto';
import { cleanup, startBareProxy, startDistribution, startMeridian } from './lib/procs.mjs';
import { wanLink } from './lib/wan-link.mjs';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    layers: { type: 'string', default: '4' },
    'layer-mib': { type: 'string', default: '8' },
    clients: { type: 'string', default: '100' },
    'wan-ms': { type: 'string', default: '10' },
    'wan-mbps': { type: 'string', default: '100' },
    out: { type: 'string' },
  },
});
const RUNS = Number(flags.runs);
const LAYERS = Number(flags.layers);
const LAYER_BYTES = Number(flags['layer-mib']) * MiB;
const CLIENTS = Number(flags.clients);
const WAN = { delayMs: Number(flags['wan-ms']), mbps: Number(flags['wan-mbps']) };
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** The node's log file, once it started. */
let nodeLog;
const readTail = (file) => {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const image = () =>
  makeImage(Array.from({ length: LAYERS }, () => memBlob(randomBytes(LAYER_BYTES))));

async function push(base, repo, img) {
  for (const b of [img.config, ...img.layers]) {
    const post = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await post.arrayBuffer();
    const loc = new URL(post.headers.get('location'), base);
    loc.searchParams.set('digest', b.digest);
    const put = await fetch(loc, { method: 'PUT', body: b.bytes });
    await put.arrayBuffer();
    if (put.status !== 201) throw new Error(`push blob: ${put.status}`);
  }
  const r = await fetch(`${base}/v2/${repo}/manifests/v1`, {
    method: 'PUT',
    headers: { 'Content-Type': MANIFEST },
    body: img.manifest.bytes,
  });
  await r.arrayBuffer();
  if (r.status !== 201) throw new Error(`push manifest: ${r.status}`);
}

/** Manifest, then every blob 3 at a time; ms. */
async function pull(base, repo) {
  const t = performance.now();
  const m = await fetch(`${base}/v2/${repo}/manifests/v1`, { headers: { Accept: MANIFEST } });
  if (m.status !== 200) throw new Error(`pull ${repo}: ${m.status} ${await m.text()}`);
  const parsed = await m.json();
  const queue = [parsed.config.digest, ...parsed.layers.map((l) => l.digest)];
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const r = await fetch(`${base}/v2/${repo}/blobs/${d}`);
        if (r.status !== 200) throw new Error(`blob ${d}: ${r.status} ${await r.text()}`);
        for await (const _ of r.body);
      }
    }),
  );
  return performance.now() - t;
}

/**
 * Waits until the cold pull's copy is stored (the manifest answers `X-Meridian-Cache: hit`): a
 * cold pull is answered while the image is still being copied, and "warm" means cached.
 */
async function stored(base, repo) {
  for (let i = 0; i < 500; i++) {
    const r = await fetch(`${base}/v2/${repo}/manifests/v1`, { headers: { Accept: MANIFEST } });
    await r.arrayBuffer();
    if (r.headers.get('x-meridian-cache') === 'hit') return;
    await new Promise((ok) => setTimeout(ok, 20));
  }
  throw new Error(`${repo}: the copy was not stored within 10 s`);
}

/** A forwarding proxy that counts the requests that reach `target`. */
async function countingProxy(target) {
  const t = new URL(target);
  const counts = { total: 0, blobs: 0, manifests: 0 };
  const server = createServer((req, res) => {
    counts.total++;
    if (req.url.includes('/blobs/')) counts.blobs++;
    if (req.url.includes('/manifests/')) counts.manifests++;
    const up = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { host: `127.0.0.1:${server.address().port}`, counts, close: () => server.close() };
}

async function main() {
  const dist = await startDistribution({ name: 'cache-upstream' });
  const proxy = await countingProxy(dist.url);
  const link = await wanLink(new URL(dist.url).host, WAN);
  const node = await startMeridian({ name: 'cache-node' });
  const bare = await startBareProxy(dist);
  nodeLog = node.logFile;
  try {
    // The timed rows read the upstream directly, as the direct pull does (the counting proxy is
    // a Node process of its own, the bench's, on the same two cores: it would add a hop to the
    // cold pull only); the crowd reads it through the proxy, which counts what reaches it.
    for (const [name, host, target] of [
      ['bench', new URL(dist.url).host, 'hub/*'],
      ['counted', proxy.host, 'counted/*'],
      ['wan', link.host, 'wan/*'],
    ]) {
      const rule = await fetch(`${node.url}/meridian/v1/admin/cache-rules`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          name,
          source: `${host}/bench/*`,
          target,
          tagTtlSeconds: 3600,
          concurrency: 8,
          ratePerSecond: 100,
        }),
      });
      if (rule.status !== 201) throw new Error(`rule: ${rule.status} ${await rule.text()}`);
    }
    const direct = [];
    const cold = [];
    const warm = [];
    const plain = [];
    const wanDirect = [];
    const wanCold = [];
    const proxied = [];
    for (let i = 0; i < RUNS; i++) {
      await push(dist.url, `bench/direct${i}`, image());
      await push(dist.url, `bench/img${i}`, image());
      await push(node.url, `plain/img${i}`, image());
      await push(dist.url, `bench/proxied${i}`, image());
      direct.push(await pull(dist.url, `bench/direct${i}`));
      proxied.push(await pull(bare.url, `bench/proxied${i}`));
      cold.push(await pull(node.url, `hub/img${i}`));
      await stored(node.url, `hub/img${i}`);
      warm.push(await pull(node.url, `hub/img${i}`));
      plain.push(await pull(node.url, `plain/img${i}`));
      await push(dist.url, `bench/wdirect${i}`, image());
      await push(dist.url, `bench/wimg${i}`, image());
      wanDirect.push(await pull(`http://${link.host}`, `bench/wdirect${i}`));
      wanCold.push(await pull(node.url, `wan/wimg${i}`));
    }
    await push(dist.url, 'bench/crowd', image());
    const before = { ...proxy.counts };
    const t = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, () => pull(node.url, 'counted/crowd')));
    const crowdMs = performance.now() - t;
    const ms = (x) => Math.round(x * 10) / 10;
    const result = {
      image: `${LAYERS} layers × ${LAYER_BYTES / MiB} MiB + config`,
      runs: RUNS,
      directMs: ms(median(direct)),
      coldMs: ms(median(cold)),
      coldRatio: Math.round((median(cold) / median(direct)) * 100) / 100,
      bareProxyMs: ms(median(proxied)),
      bareProxyRatio: Math.round((median(proxied) / median(direct)) * 100) / 100,
      coldVsBareProxy: Math.round((median(cold) / median(proxied)) * 100) / 100,
      warmMs: ms(median(warm)),
      plainMs: ms(median(plain)),
      warmRatio: Math.round((median(warm) / median(plain)) * 100) / 100,
      wan: {
        link: `${WAN.delayMs} ms each way (${2 * WAN.delayMs} ms round trip), ${WAN.mbps} MB/s shared`,
        directMs: ms(median(wanDirect)),
        coldMs: ms(median(wanCold)),
        coldRatio: Math.round((median(wanCold) / median(wanDirect)) * 100) / 100,
      },
      crowd: {
        clients: CLIENTS,
        ms: ms(crowdMs),
        blobs: LAYERS + 1,
        upstreamBlobRequests: proxy.counts.blobs - before.blobs,
        upstreamManifestRequests: proxy.counts.manifests - before.manifests,
        upstreamRequests: proxy.counts.total - before.total,
      },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (flags.out) {
      const rows = [
        [
          'cold pull through a rule vs direct pull from the upstream',
          result.coldMs,
          result.directMs,
          result.coldRatio,
          '≤ 1.2×',
        ],
        [
          'pull through a bare Node forwarding proxy (no hash, spool or store) vs direct pull',
          result.bareProxyMs,
          result.directMs,
          result.bareProxyRatio,
          'the loopback ceiling',
        ],
        [
          'cold pull through a rule vs pull through the bare Node proxy',
          result.coldMs,
          result.bareProxyMs,
          result.coldVsBareProxy,
          '',
        ],
        [
          `cold pull through a rule vs direct pull, upstream over a WAN link (${result.wan.link})`,
          result.wan.coldMs,
          result.wan.directMs,
          result.wan.coldRatio,
          '≤ 1.2×',
        ],
        [
          'warm pull through a rule vs plain pull of pushed content',
          result.warmMs,
          result.plainMs,
          result.warmRatio,
          '≈ 1.0×',
        ],
      ];
      const md = [
        `Image: ${result.image}; median of ${RUNS} runs; upstream CNCF Distribution (docker-registry, no auth), read directly on loopback by the first timed rows (the bare proxy's row through that proxy, its own process), through the WAN link by both pulls of the WAN row, and through a counting proxy by the crowd.`,
        '',
        '| row | Meridian ms | baseline ms | ratio | target |',
        '| --- | --- | --- | --- | --- |',
        ...rows.map((r) => `| ${r.join(' | ')} |`),
        '',
        `${CLIENTS} concurrent cold pulls of one image (${LAYERS + 1} blobs): ${result.crowd.upstreamBlobRequests} blob requests and ${result.crowd.upstreamManifestRequests} manifest requests reached the upstream (${result.crowd.upstreamRequests} in all), all pulls done in ${result.crowd.ms} ms (target: one request per blob).`,
        '',
      ].join('\n');
      writeFileSync(flags.out, md);
    }
  } finally {
    proxy.close();
    link.close();
    await cleanup();
  }
}

main().catch(async (err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  // The node's last words (warn and above) say why a pull failed.
  if (nodeLog) process.stderr.write(`--- ${nodeLog} (tail) ---\n${readTail(nodeLog)}\n`);
  await cleanup();
  process.exit(1);
});
