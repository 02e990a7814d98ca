// `pnpm bench:gc`: garbage collection at scale, in one process (the primary node collects its own
// region in-process, so this is how it runs). Needs `pnpm build` first.
//
//   node bench/gc.mjs [--manifests 10000] [--blobs-per 5] [--repos 100] [--pushes 150] [--no-write]
//
// A generated registry on the fs driver (N manifests, each with a config and blobs-per − 1
// small layers, spread over the repositories), 10 % of the manifests deleted through the
// registry (so the GC subscriber notes them), everything aged past the grace period. Then:
// an incremental run (time, storage requests per freed object), a full mark-and-sweep of what
// is left, and the p99 latency of image pushes through the HTTP API with and without a full GC
// running at the same time. Writes docs/benchmarks-gc.md.
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pino from 'pino';
import { execFile } from 'node:child_process';
import { machineInfo } from './lib/report.mjs';
import { REPO_ROOT } from './lib/procs.mjs';

const { Registry, startNodeServer } = await import(`${REPO_ROOT}/packages/registry/dist/index.js`);
const { GarbageCollector, attachGcCandidates } = await import(
  `${REPO_ROOT}/packages/lifecycle/dist/index.js`
);
const { Layout, openStore } = await import(`${REPO_ROOT}/packages/storage/dist/index.js`);
const { parseDigest } = await import(`${REPO_ROOT}/packages/oci/dist/index.js`);

const { values: flags } = parseArgs({
  options: {
    manifests: { type: 'string', default: '10000' },
    'blobs-per': { type: 'string', default: '5' },
    repos: { type: 'string', default: '100' },
    pushes: { type: 'string', default: '150' },
    'no-write': { type: 'boolean', default: false },
  },
});
const N = Number(flags.manifests);
const PER = Number(flags['blobs-per']);
const REPOS = Number(flags.repos);
const PUSHES = Number(flags.pushes);
const GRACE = 24 * 3600_000;
const run = promisify(execFile);
const log = (...a) => console.log(`[gc-bench ${new Date().toISOString().slice(11, 19)}]`, ...a);
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The store with every call counted (the collector's own view). */
function counting(store) {
  const counts = {};
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args) => {
        counts[prop] = (counts[prop] ?? 0) + 1;
        return v.apply(target, args);
      };
    },
  });
  const total = () => Object.values(counts).reduce((a, b) => a + b, 0);
  const reset = () => {
    for (const k of Object.keys(counts)) delete counts[k];
  };
  return { store: proxy, counts, total, reset };
}

async function pool(n, items, fn) {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

async function ageAll(root, ms) {
  const t = new Date(Date.now() - ms);
  const walk = async (dir) => {
    const entries = await readdir(dir, { withFileTypes: true });
    await pool(32, entries, async (e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else await utimes(p, t, t);
    });
  };
  await walk(root);
}

function p(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Pushes `count` small images from a client process of its own; their latencies, sorted. */
async function pushLoop(url, count, prefix) {
  const { stdout } = await run(process.execPath, [
    join(REPO_ROOT, 'bench/lib/push-loop.mjs'),
    url,
    String(count),
    prefix,
  ]);
  return JSON.parse(stdout).sort((a, b) => a - b);
}

const dir = mkdtempSync(join(tmpdir(), 'meridian-bench-gc-'));
try {
  const store = await openStore(dir);
  // ——— generate ———
  log(`generating ${N} manifests × ${PER} blobs over ${REPOS} repositories in ${dir}`);
  const t0 = performance.now();
  const manifests = [];
  await pool(
    16,
    Array.from({ length: N }, (_, i) => i),
    async (i) => {
      const repo = `bench/r${i % REPOS}`;
      const blobs = Array.from({ length: PER }, () => randomBytes(64));
      const desc = blobs.map((b) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: sha(b),
        size: b.length,
      }));
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { ...desc[0], mediaType: 'application/vnd.oci.image.config.v1+json' },
          layers: desc.slice(1),
        }),
      );
      const d = sha(body);
      const opt = { durable: false };
      for (const [j, b] of blobs.entries()) {
        const bd = parseDigest(desc[j].digest);
        await store.put(Layout.blobData(bd), b, opt);
        await store.put(
          Layout.layerLink(repo, bd),
          Buffer.from(JSON.stringify({ digest: bd.value, size: b.length })),
          opt,
        );
      }
      const md = parseDigest(d);
      await store.put(Layout.blobData(md), body, opt);
      await store.put(
        Layout.revisionLink(repo, md),
        Buffer.from(
          JSON.stringify({
            digest: d,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            size: body.length,
          }),
        ),
        opt,
      );
      await store.put(
        Layout.tagCurrent(repo, `v${i}`),
        Buffer.from(JSON.stringify({ digest: d, seq: 1, updatedAt: new Date().toISOString() })),
        opt,
      );
      manifests.push({ repo, digest: d });
    },
  );
  const genSeconds = (performance.now() - t0) / 1000;
  log(`generated in ${genSeconds.toFixed(1)} s`);

  const registry = new Registry({ store, gcMinGraceMs: 3600_000, cache: { ttlMs: 0 } });
  const detach = await attachGcCandidates(registry, store);
  // ——— delete 10 % ———
  const doomed = manifests.filter((_, i) => i % 10 === 0);
  const td = performance.now();
  await pool(8, doomed, (m) => registry.manifests.delete(m.repo, m.digest));
  log(`deleted ${doomed.length} manifests in ${((performance.now() - td) / 1000).toFixed(1)} s`);
  for (;;) {
    const page = await store.list(Layout.gcCandidatesRoot, { limit: 100000 });
    if (page.objects.length >= doomed.length) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await ageAll(dir, 2 * GRACE);

  const counted = counting(store);
  const gc = new GarbageCollector({
    region: 'bench',
    store: counted.store,
    role: 'primary',
    guard: registry.guard,
    onUnlinked: (repository, digest) =>
      registry.events.emit({ type: 'blobDeleted', repository, digest, at: Date.now() }),
  });
  // ——— incremental ———
  const inc = await gc.run({ graceMs: GRACE, mode: 'incremental' });
  const incRequests = counted.total();
  const incCounts = { ...counted.counts };
  const freedObjects = inc.blobsDeleted + inc.linksRemoved;
  log(
    `incremental: ${inc.durationMs} ms, ${inc.blobsDeleted} blobs + ${inc.linksRemoved} links freed, ${incRequests} storage requests`,
    counted.counts,
  );
  // ——— full ———
  counted.reset();
  const full = await gc.run({ graceMs: GRACE, mode: 'full' });
  const fullRequests = counted.total();
  log(
    `full: ${full.durationMs} ms over ${full.manifests} manifests, ${full.blobsScanned} blobs; ${fullRequests} storage requests`,
  );
  // ——— pushes with and without a full run alongside ———
  const node = await startNodeServer({
    registry,
    log: pino({ level: 'silent' }),
    listen: '127.0.0.1:0',
    purgeIntervalMs: 0,
  });
  await pushLoop(node.url, 20, 'warm'); // warm-up
  const idle = await pushLoop(node.url, PUSHES, 'idle');
  let running = true;
  let runs = 0;
  const background = (async () => {
    while (running) {
      await gc.run({ graceMs: GRACE, mode: 'full' });
      runs++;
    }
  })();
  const during = await pushLoop(node.url, PUSHES, 'during');
  running = false;
  await background;
  await node.close();
  await detach();
  await registry.events.close();
  await store.close();
  const ratio = p(during, 0.99) / p(idle, 0.99);
  log(
    `push p99: idle ${p(idle, 0.99).toFixed(1)} ms, during GC ${p(during, 0.99).toFixed(1)} ms (${ratio.toFixed(2)}×, ${runs} full runs alongside)`,
  );

  const rows = [
    ['Registry', `${N} manifests, ${N * PER} blobs (+${N} manifest bodies), ${REPOS} repositories`],
    ['Deleted', `${doomed.length} manifests (10 %)`],
    [
      'Incremental run',
      `${(inc.durationMs / 1000).toFixed(2)} s; freed ${inc.blobsDeleted} blobs and ${inc.linksRemoved} links; ${incRequests} storage requests = ${(incRequests / Math.max(1, freedObjects)).toFixed(1)} per freed object`,
    ],
    [
      'Full mark-and-sweep (what is left)',
      `${(full.durationMs / 1000).toFixed(2)} s over ${full.manifests} manifests and ${full.blobsScanned} blobs; ${fullRequests} storage requests`,
    ],
    [
      'Image push p99 (config + 2 × 4 KiB layers + manifest, HTTP)',
      `${p(idle, 0.99).toFixed(1)} ms idle; ${p(during, 0.99).toFixed(1)} ms during full GC runs = **${ratio.toFixed(2)}×** (target ≤ 1.2×; ${runs} runs alongside ${PUSHES} pushes)`,
    ],
    [
      'Image push p50',
      `${p(idle, 0.5).toFixed(1)} ms idle; ${p(during, 0.5).toFixed(1)} ms during GC`,
    ],
  ];
  const m = machineInfo();
  const doc = `# Garbage collection benchmark

Generated by \`pnpm bench:gc\` (bench/gc.mjs) on ${new Date().toISOString().slice(0, 10)}: fs driver,
one process (a primary node collects its own region in-process), ${typeof m === 'string' ? m : JSON.stringify(m)}.

| measure | result |
| --- | --- |
${rows.map((r) => `| ${r[0]} | ${r[1]} |`).join('\n')}

Storage requests of the incremental run, by call: ${Object.entries(incCounts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}.

How to read it: the incremental run marks only the repositories a delete touched (here the
deletes touch all 100, so it reads nearly every manifest) and checks only the noted blobs against
one listing of every repository's links (ADR 0012); its cost follows the deletes and the number
of repositories, not the number of blobs. The full run reads every manifest and lists every
blob. Runs pace themselves to half of the process's time (\`duty\` 0.5). Most of both runs is
fs deletes and listings; push latency is measured from a client process of its own.
`;
  if (!flags['no-write']) {
    writeFileSync(join(REPO_ROOT, 'docs/benchmarks-gc.md'), doc);
    log('wrote docs/benchmarks-gc.md');
  } else console.log(doc);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
