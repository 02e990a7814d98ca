// `pnpm bench:acr`: what `/acr/v1` listings cost on one node (fs driver), next to `/v2`'s tag
// list. Needs `pnpm build` first.
//
//   node bench/acr.mjs [--manifests 200] [--tags 1000] [--requests 30]
//
// One repository with N manifests (a config and a layer each) and T tags spread over them, pushed
// through the HTTP API; then each endpoint is asked `--requests` times in a row and the p50 and
// p99 latency written to docs/benchmarks-acr.md.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { machineInfo } from './lib/report.mjs';
import { REPO_ROOT } from './lib/procs.mjs';

const { Registry, startNodeServer } = await import(`${REPO_ROOT}/packages/registry/dist/index.js`);
const { openStore } = await import(`${REPO_ROOT}/packages/storage/dist/index.js`);

const { values: flags } = parseArgs({
  options: {
    manifests: { type: 'string', default: '200' },
    tags: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '30' },
  },
});
const N = Number(flags.manifests);
const T = Number(flags.tags);
const R = Number(flags.requests);

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'meridian-bench-acr-'));
const store = await openStore(dir);
const registry = new Registry({ store });
const node = await startNodeServer({
  registry,
  log: pino({ level: 'silent' }),
  listen: '127.0.0.1:0',
  purgeIntervalMs: 0,
});
const base = node.url;
const repo = 'bench/app';

async function ok(res) {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}
async function blob(bytes) {
  const d = sha(bytes);
  await ok(
    await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${d}`, { method: 'POST', body: bytes }),
  );
  return { digest: d, size: bytes.length };
}

const digests = [];
for (let i = 0; i < N; i++) {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', n: i, rootfs: { type: 'layers' } }),
  );
  const c = await blob(config);
  const l = await blob(randomBytes(256));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l }],
    }),
  );
  digests.push(sha(manifest));
  const put = (ref) =>
    fetch(`${base}/v2/${repo}/manifests/${ref}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
  await ok(await put(sha(manifest)));
}
for (let t = 0; t < T; t++) {
  const d = digests[t % N];
  const bytes = await (
    await fetch(`${base}/v2/${repo}/manifests/${d}`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
  ).arrayBuffer();
  await ok(
    await fetch(`${base}/v2/${repo}/manifests/t${String(t).padStart(5, '0')}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: Buffer.from(bytes),
    }),
  );
}

const endpoints = [
  ['/v2 tag list (reference)', `/v2/${repo}/tags/list`],
  ['/acr/v1/_catalog', '/acr/v1/_catalog'],
  ['/acr/v1 repository', `/acr/v1/${repo}`],
  ['_tags?n=100', `/acr/v1/${repo}/_tags?n=100`],
  ['_tags?n=100&orderby=timedesc', `/acr/v1/${repo}/_tags?n=100&orderby=timedesc`],
  ['_manifests?n=100', `/acr/v1/${repo}/_manifests?n=100`],
  ['_manifests/{digest}', `/acr/v1/${repo}/_manifests/${digests[0]}`],
  ['_tags/{tag}', `/acr/v1/${repo}/_tags/t00000`],
];
const rows = [];
for (const [name, path] of endpoints) {
  const ms = [];
  for (let i = 0; i < R; i++) {
    const t0 = process.hrtime.bigint();
    await ok(await fetch(`${base}${path}`));
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)];
  rows.push({ name, p50: q(0.5), p99: q(0.99) });
  process.stdout.write(`${name}: p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms\n`);
}
await node.close();
await store.close();
rmSync(dir, { recursive: true, force: true });

const m = machineInfo();
writeFileSync(
  join(REPO_ROOT, 'docs/benchmarks-acr.md'),
  `# /acr/v1 listings (bench/acr.mjs)

One node, fs driver, one repository with ${N} manifests and ${T} tags; ${R} sequential requests per
endpoint (\`node bench/acr.mjs --manifests ${N} --tags ${T} --requests ${R}\`). Machine: ${m.cores}
cores (${m.cpu}), ${m.memGiB} GiB, ${m.os}, Node ${m.node}; load average at the end
${loadavg()
  .map((x) => x.toFixed(1))
  .join(' ')} (a shared machine: other work ran at the same time).

| endpoint | p50 ms | p99 ms |
| --- | ---: | ---: |
${rows.map((r) => `| ${r.name} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`).join('\n')}

Tag records come through the node's metadata cache (1 s, the freshness of \`/v2\` tag lists) and
a manifest's summary (size, platform, types) is kept by digest, since its content never changes;
a repository's manifests are one listing of its revisions. A \`_manifests\` page still reads each
of its manifests' revision link and referrers listing.
`,
);
