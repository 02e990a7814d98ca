// `pnpm bench:replication -- --only=herd` (or `node bench/replication-herd.mjs`): a herd of cold
// pulls (issue 18). A primary (eastus) and one replica (westeurope), `meridian dev`'s simulated
// latency between them, no worker (so the replica has not received the image): 50 clients pull
// an image with one 256 MiB layer from the replica at once, as a rollout's pods do.
//
// Reported: a single cold pull of a like image (its own repository, so also cold), the herd's
// slowest and median pull, slowest / single (target ≤ 1.5×), the primary's egress during the
// herd against the image's size (target ≤ 1.05×, from the primary's
// meridian_http_response_bytes_total), and whether every pull was byte-identical (each client
// hashes what it receives). The clients run in `--procs` child processes (default 5), so hashing
// 50 × 256 MiB is not one bench thread's bottleneck. The herd is then repeated warm (the replica
// holds the image): on one machine, delivering 50 × 256 MiB over loopback and hashing it is
// itself the floor, so "cold / warm slowest" is what a miss adds to it.
//
//   node bench/replication-herd.mjs [--clients=N] [--layer-mib=N] [--procs=N] [--runs=N]
//                                   [--wan-mib-s=N] [--out=FILE]
//
// --wan-mib-s caps the replica → primary link (a throttling proxy, per connection), to see the
// herd when the WAN, not this machine's loopback, is the bottleneck. Needs `pnpm build` and
// redis-server.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RegistryClient } from './lib/client.mjs';
import { makeImage, MANIFEST_ACCEPT, MiB, streamBlob } from './lib/content.mjs';
import { benchRoot, freePort, MERIDIAN_CLI, tempDir } from './lib/procs.mjs';

const { values: flags } = parseArgs({
  options: {
    clients: { type: 'string', default: '50' },
    'layer-mib': { type: 'string', default: '256' },
    procs: { type: 'string', default: '5' },
    runs: { type: 'string', default: '1' },
    'wan-mib-s': { type: 'string' },
    out: { type: 'string' },
    // internal: this process is one of the pullers
    puller: { type: 'string' },
  },
  strict: false,
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('[herd]', ...a);

/** One pull: the manifest by tag, then its blobs (3 at a time), hashed; ms and digests. */
async function pullOnce(base, repo, tag) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 3 });
  const get = (path, headers = {}) =>
    new Promise((resolve, reject) => {
      const req = http.get(new URL(path, base), { agent, headers }, (res) => {
        const hash = createHash('sha256');
        const parts = [];
        let bytes = 0;
        res.on('data', (c) => {
          hash.update(c);
          bytes += c.length;
          if (parts.length < 64) parts.push(c);
        });
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            bytes,
            digest: `sha256:${hash.digest('hex')}`,
            body: Buffer.concat(parts),
            complete: res.complete,
          }),
        );
      });
      req.on('error', reject);
    });
  const t = performance.now();
  try {
    const m = await get(`/v2/${repo}/manifests/${tag}`, { accept: MANIFEST_ACCEPT });
    if (m.status !== 200) return { ok: false, error: `manifest ${m.status}` };
    const parsed = JSON.parse(m.body.toString());
    const queue = [parsed.config, ...parsed.layers];
    let ok = true;
    await Promise.all(
      Array.from({ length: 3 }, async () => {
        for (let d = queue.shift(); d; d = queue.shift()) {
          const r = await get(`/v2/${repo}/blobs/${d.digest}`);
          if (r.status !== 200 || !r.complete || r.digest !== d.digest || r.bytes !== d.size)
            ok = false;
        }
      }),
    );
    return { ok, ms: performance.now() - t };
  } catch (err) {
    return { ok: false, error: err.message, ms: performance.now() - t };
  } finally {
    agent.destroy();
  }
}

const children = new Map();

function spawnChild(name, cmd, args) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('MERIDIAN_')) delete env[k];
  const fd = openSync(join(benchRoot(), `${name}.log`), 'a');
  const child = spawn(cmd, args, { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise((ok) => child.once('exit', ok));
  children.set(child.pid, { child, exited });
  return child.pid;
}

async function stopAll() {
  for (const [pid, e] of [...children].reverse()) {
    e.child.kill('SIGTERM');
    const t = setTimeout(() => e.child.kill('SIGKILL'), 5000);
    await e.exited;
    clearTimeout(t);
    children.delete(pid);
  }
}

async function waitHttp(url) {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`${url} not ready`);
}

/** A forwarding proxy that sends each response body at most `mibPerS` MiB/s. */
async function throttlingProxy(target, mibPerS) {
  const t = new URL(target);
  const bytesPerMs = (mibPerS * MiB) / 1000;
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      async (r) => {
        res.writeHead(r.statusCode, r.headers);
        const started = performance.now();
        let sent = 0;
        try {
          for await (const chunk of r) {
            sent += chunk.length;
            const due = started + sent / bytesPerMs;
            const wait = due - performance.now();
            if (wait > 1) await sleep(wait);
            if (!res.write(chunk)) await new Promise((ok) => res.once('drain', ok));
          }
          res.end();
        } catch {
          res.destroy();
        }
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

async function primaryEgress(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^meridian_http_response_bytes_total(?:\{[^}]*\})?\s+(\S+)$/gm))
    sum += Number(m[1]);
  return sum;
}

async function pushImage(client, repo, image) {
  for (const b of [image.config, ...image.layers]) await client.pushBlob(repo, b);
  await client.putManifest(repo, 'v1', image.manifest);
}

/** Starts `procs` puller processes sharing `clients` pulls; resolves with every result. */
async function herd(base, repo, clients, procs) {
  const per = Array.from(
    { length: procs },
    (_, i) => Math.floor(clients / procs) + (i < clients % procs ? 1 : 0),
  ).filter((n) => n > 0);
  const kids = per.map((n) =>
    spawn(process.execPath, [fileURLToPath(import.meta.url), `--puller=${base},${repo},v1,${n}`], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const lines = kids.map((k) => {
    let out = '';
    k.stdout.on('data', (c) => (out += c));
    return {
      ready: new Promise((ok) => {
        const check = () => (out.startsWith('ready\n') ? ok() : k.stdout.once('data', check));
        check();
      }),
      done: new Promise((ok) => k.once('exit', () => ok(out))),
    };
  });
  await Promise.all(lines.map((l) => l.ready));
  const t = performance.now();
  for (const k of kids) k.stdin.write('go\n');
  const outs = await Promise.all(lines.map((l) => l.done));
  const wall = performance.now() - t;
  const results = outs.flatMap((o) => JSON.parse(o.split('\n')[1] || '[]'));
  return { results, wall };
}

async function main() {
  const CLIENTS = Number(flags.clients);
  const LAYER = Number(flags['layer-mib']) * MiB;
  const PROCS = Math.max(1, Math.min(Number(flags.procs), CLIENTS));
  const RUNS = Number(flags.runs);
  const dir = tempDir('herd');
  const redisPort = await freePort();
  spawnChild('herd-redis', 'redis-server', [
    ...['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    ...['--dir', dir],
  ]);
  const primaryUrl = `http://127.0.0.1:${await freePort()}`;
  const replicaUrl = `http://127.0.0.1:${await freePort()}`;
  const wan = flags['wan-mib-s']
    ? await throttlingProxy(primaryUrl, Number(flags['wan-mib-s']))
    : undefined;
  const config = {
    redis: `redis://127.0.0.1:${redisPort}`,
    regions: [
      { name: 'eastus', role: 'primary', endpoint: primaryUrl, storage: join(dir, 'eastus') },
      {
        name: 'westeurope',
        role: 'replica',
        endpoint: replicaUrl,
        storage: join(dir, 'westeurope'),
      },
    ],
    simulatedLatencyMs: { 'eastus-westeurope': 40 },
    auth: { enabled: false },
    log: { level: 'warn' },
  };
  const configFile = join(dir, 'cluster.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  // With a WAN cap the replica reaches its primary through the throttling proxy.
  const replicaFile = join(dir, 'replica.json');
  writeFileSync(replicaFile, JSON.stringify({ ...config, ...(wan ? { primary: wan.url } : {}) }));
  const serveArgs = (region) => [
    MERIDIAN_CLI,
    'serve',
    '--config',
    region === 'westeurope' ? replicaFile : configFile,
    '--region',
    region,
  ];
  spawnChild('herd-eastus', process.execPath, serveArgs('eastus'));
  spawnChild('herd-westeurope', process.execPath, serveArgs('westeurope'));
  await waitHttp(`${primaryUrl}/readyz`);
  await waitHttp(`${replicaUrl}/readyz`);
  const client = new RegistryClient(primaryUrl);
  const rows = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const load = loadavg().map((x) => x.toFixed(2));
      const single = makeImage([streamBlob(`single-${run}-${Date.now()}`, LAYER)]);
      const crowd = makeImage([streamBlob(`herd-${run}-${Date.now()}`, LAYER)]);
      log(`run ${run + 1}: pushing two images of ${LAYER / MiB} MiB to the primary`);
      await pushImage(client, `herd/single${run}`, single);
      await pushImage(client, `herd/crowd${run}`, crowd);
      const one = await herd(replicaUrl, `herd/single${run}`, 1, 1);
      if (!one.results[0]?.ok) throw new Error(`single pull failed: ${JSON.stringify(one)}`);
      const before = await primaryEgress(primaryUrl);
      const many = await herd(replicaUrl, `herd/crowd${run}`, CLIENTS, PROCS);
      const egress = (await primaryEgress(primaryUrl)) - before;
      // The same herd again, now that the replica holds the image: the floor this machine sets
      // for delivering (and the clients for hashing) the herd's bytes, whatever a miss costs.
      const warm = await herd(replicaUrl, `herd/crowd${run}`, CLIENTS, PROCS);
      const warmMs = warm.results.map((r) => r.ms).sort((a, b) => a - b);
      const imageBytes =
        crowd.config.size +
        crowd.layers.reduce((n, l) => n + l.size, 0) +
        crowd.manifest.bytes.length;
      const ms = many.results.map((r) => r.ms).sort((a, b) => a - b);
      rows.push({
        run: run + 1,
        loadAtStart: load.join(' '),
        singleMs: Math.round(one.results[0].ms),
        slowestMs: Math.round(ms[ms.length - 1]),
        medianMs: Math.round(ms[Math.floor(ms.length / 2)]),
        slowestOverSingle: Math.round((ms[ms.length - 1] / one.results[0].ms) * 100) / 100,
        warmSlowestMs: Math.round(warmMs[warmMs.length - 1]),
        slowestOverWarmSlowest:
          Math.round((ms[ms.length - 1] / warmMs[warmMs.length - 1]) * 100) / 100,
        pulls: many.results.length,
        byteIdentical:
          many.results.filter((r) => r.ok).length + warm.results.filter((r) => r.ok).length,
        pullsChecked: many.results.length + warm.results.length,
        egressBytes: egress,
        imageBytes,
        egressOverImage: Math.round((egress / imageBytes) * 1000) / 1000,
      });
      log(JSON.stringify(rows[rows.length - 1]));
    }
  } finally {
    client.close();
    wan?.close();
    await stopAll();
    await fsp.rm(dir, { recursive: true, force: true });
  }
  // The nodes' logs stay only when the run failed (above, this is not reached).
  await fsp.rm(benchRoot(), { recursive: true, force: true });
  const result = {
    scenario: `${CLIENTS} concurrent cold pulls at a replica of an image with one ${LAYER / MiB} MiB layer`,
    wanMiBPerS: flags['wan-mib-s'] ? Number(flags['wan-mib-s']) : null,
    rows,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (flags.out) {
    const md = [
      `${result.scenario}; dev's 40 ms eastus–westeurope latency${result.wanMiBPerS ? `, WAN capped at ${result.wanMiBPerS} MiB/s` : ', loopback bandwidth'}.`,
      '',
      '| run | load at start | single cold pull ms | herd slowest ms | herd median ms | slowest / single | warm herd slowest ms | cold / warm slowest | byte-identical | primary egress / image |',
      '| --: | --- | --: | --: | --: | --: | --: | --: | --: | --: |',
      ...rows.map(
        (r) =>
          `| ${r.run} | ${r.loadAtStart} | ${r.singleMs} | ${r.slowestMs} | ${r.medianMs} | ${r.slowestOverSingle} | ${r.warmSlowestMs} | ${r.slowestOverWarmSlowest} | ${r.byteIdentical}/${r.pullsChecked} | ${r.egressOverImage} |`,
      ),
      '',
    ].join('\n');
    writeFileSync(flags.out, md);
  }
}

// A puller child: `--puller=BASE,REPO,TAG,N` — waits for "go" on stdin, runs N pulls at once,
// prints one JSON line with each pull's result.
if (flags.puller) {
  const [base, repo, tag, n] = flags.puller.split(',');
  process.stdout.write('ready\n');
  process.stdin.once('data', async () => {
    const results = await Promise.all(
      Array.from({ length: Number(n) }, () => pullOnce(base, repo, tag)),
    );
    process.stdout.write(`${JSON.stringify(results)}\n`);
    process.exit(0);
  });
} else {
  main().catch(async (err) => {
    log(err.stack ?? err);
    await stopAll();
    process.exit(1);
  });
}
