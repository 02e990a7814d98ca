// CPU profile of Meridian under one benchmark load: starts the built CLI with --cpu-prof, seeds
// it, drives the load, stops it by PID (the profile is written on exit) and prints the hottest
// functions by self time and by total time, and self time by package.
//
//   node bench/profile.mjs [--case=get|head|tags|small|blob-get|push-large] [--seconds=10] [--log-level=warn]
//                          [--top=25] [--out=FILE.cpuprofile]
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RegistryClient } from './lib/client.mjs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { makeImage, MANIFEST_ACCEPT, MiB, smallImage, streamBlob } from './lib/content.mjs';
import { ab, wrk } from './lib/load.mjs';
import { cleanup, cleanupSync, REPO_ROOT, startMeridian, tempDir } from './lib/procs.mjs';
import { seedReadTargets } from './scenarios.mjs';

const { values: o } = parseArgs({
  options: {
    case: { type: 'string', default: 'get' },
    seconds: { type: 'string', default: '10' },
    'log-level': { type: 'string', default: 'warn' },
    top: { type: 'string', default: '25' },
    out: { type: 'string' },
  },
});
const run = promisify(execFile);
const seconds = Number(o.seconds);
const top = Number(o.top);
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => void cleanup().finally(() => process.exit(130)));

async function drive(node) {
  const load = { seconds, connections: 32, threads: 2 };
  const manifest = `${node.url}/v2/read/app/manifests/latest`;
  switch (o.case) {
    case 'get':
      return wrk(manifest, { ...load, headers: { Accept: MANIFEST_ACCEPT } });
    case 'head':
      return ab(manifest, { ...load, method: 'HEAD', headers: { Accept: MANIFEST_ACCEPT } });
    case 'tags':
      return wrk(`${node.url}/v2/read/tags/tags/list`, load);
    case 'small': {
      const client = new RegistryClient(node.url);
      const end = Date.now() + seconds * 1000;
      let i = 0;
      while (Date.now() < end) await client.pushImage(`small/app-${i++}`, 'v1', smallImage());
      client.close();
      return { images: i, perImageMs: (seconds * 1000) / i };
    }
    case 'blob-get': {
      const client = new RegistryClient(node.url);
      const blob = streamBlob('profile-blob', 256 * MiB);
      await client.pushImage('large/raw', 'v1', makeImage([blob]));
      const end = Date.now() + seconds * 1000;
      let bytes = 0;
      const t0 = performance.now();
      while (Date.now() < end) {
        const { stdout } = await run('curl', [
          '-sS',
          '--fail',
          '-o',
          '/dev/null',
          '-w',
          '%{size_download}',
          `${node.url}/v2/large/raw/blobs/${blob.digest}`,
        ]);
        bytes += Number(stdout);
      }
      client.close();
      return { MBps: bytes / 1e6 / ((performance.now() - t0) / 1000) };
    }
    case 'push-large': {
      const client = new RegistryClient(node.url);
      const end = Date.now() + seconds * 1000;
      let bytes = 0;
      let busy = 0;
      for (let i = 0; Date.now() < end; i++) {
        const blob = streamBlob(`profile-push-${i}`, 256 * MiB);
        const t0 = performance.now();
        await client.pushImage(`large/p${i}`, 'v1', makeImage([blob]));
        busy += performance.now() - t0;
        bytes += blob.size;
      }
      client.close();
      return { MBps: bytes / 1e6 / (busy / 1000) };
    }
    default:
      throw new Error(`--case: get, head, tags, small, blob-get or push-large`);
  }
}

/** Self and total time per function, and self time per package, from a .cpuprofile. */
function summarize(file) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const key = (n) => {
    const f = n.callFrame;
    const url = f.url
      .replace(`file://${REPO_ROOT}/`, '')
      .replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '');
    return `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`.trim();
  };
  const pkg = (n) => {
    const url = n.callFrame.url;
    if (!url)
      return n.callFrame.functionName.startsWith('(') ? n.callFrame.functionName : '(native/V8)';
    if (url.startsWith('node:')) return 'node: core';
    const m =
      /packages\/([^/]+)\/dist/.exec(url) ??
      /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
    return m ? m[1] : url;
  };
  const self = new Map();
  const incl = new Map();
  const pkgs = new Map();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    self.set(key(n), (self.get(key(n)) ?? 0) + us);
    pkgs.set(pkg(n), (pkgs.get(pkg(n)) ?? 0) + us);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur));
      if (seen.has(k)) continue; // recursion counts once
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const show = (title, m, n) => {
    console.log(`\n${title}`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      console.log(
        `${((us / total) * 100).toFixed(1).padStart(6)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`,
      );
    }
  };
  console.log(
    `\nprofile: ${file}\nsampled ${(total / 1e6).toFixed(2)} s of the server's main thread`,
  );
  show('self time by package', pkgs, 20);
  show(`self time, top ${top} functions`, self, top);
  show(`total time (self + callees), top ${top} functions`, incl, top);
}

try {
  const profDir = tempDir('cpu-prof');
  const node = await startMeridian({
    name: 'meridian-profile',
    logLevel: o['log-level'],
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir],
  });
  if (['get', 'head', 'tags'].includes(o.case)) await seedReadTargets(node, { tags: 100 });
  console.log(
    `load (${o.case}, ${seconds} s) against pid ${node.pid}:`,
    JSON.stringify(await drive(node)),
  );
  await node.stop();
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written (did the server exit cleanly?)');
  if (o.out) copyFileSync(join(profDir, file), o.out);
  summarize(join(profDir, file));
} finally {
  await cleanup();
}
