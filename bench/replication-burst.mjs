// `pnpm bench:replication -- --only=burst` / `--only=sustained` (or `node bench/replication-burst.mjs`):
// replication under load (issue 18), with `meridian dev`'s default simulated inter-region
// latencies and the default configuration (one worker process for every replica region).
//
// burst:     50 small images (config + 2 × 4 KiB) and 2 images of one 64 MiB layer, pushed back
//            to back by 4 concurrent clients, each image its own repository.
// sustained: 5 small-image pushes per second for 2 minutes.
//
// Per replica region: the time from the last push answered to the region complete, the lag of
// each image (manifest PUT answered → its tag file in the region's storage, which the worker
// writes last), the backlog over time (objects with an unapplied change, the region's pending set), the
// primary-store requests the worker made per image (meridian_replication_source_requests_total)
// and Redis commands per image per region (INFO commandstats).
//
//   node bench/replication-burst.mjs [--scenario=burst|sustained|both] [--quick] [--out=FILE]
//                                    [--small=N] [--large-mib=N] [--rate=N] [--seconds=N]
//                                    [--concurrency=N] [--profile-worker=DIR]
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RegistryClient } from './lib/client.mjs';
import { makeImage, MiB, smallImage, streamBlob } from './lib/content.mjs';
import { benchRoot, freePort, MERIDIAN_CLI, tempDir } from './lib/procs.mjs';

const { values: flags } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'both' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    small: { type: 'string' },
    'large-mib': { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    concurrency: { type: 'string' },
    'profile-worker': { type: 'string' },
  },
  strict: false,
});
const Q = flags.quick;
const SMALL = Number(flags.small ?? (Q ? 20 : 50));
const LARGE_MIB = Number(flags['large-mib'] ?? (Q ? 16 : 64));
const RATE = Number(flags.rate ?? 5);
const SECONDS = Number(flags.seconds ?? (Q ? 20 : 120));
const CLIENTS = 4;
const REGIONS = ['eastus', 'westeurope', 'southeastasia'];
/** `meridian dev`'s default one-way latencies (packages/cli/src/dev.ts, DEFAULT_LATENCY). */
const DEV_LATENCY = {
  'eastus-westeurope': 40,
  'eastus-southeastasia': 75,
  'westeurope-southeastasia': 65,
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();
const log = (...a) => console.error('[burst]', ...a);
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

async function stopChild(pid) {
  const e = children.get(pid);
  if (!e) return;
  e.child.kill('SIGTERM');
  const t = setTimeout(() => e.child.kill('SIGKILL'), 5000);
  await e.exited;
  clearTimeout(t);
  children.delete(pid);
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

async function startCluster(name) {
  const dir = tempDir(name);
  const redisPort = await freePort();
  const redisPid = spawnChild(`${name}-redis`, 'redis-server', [
    ...['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    ...['--dir', dir],
  ]);
  const redis = new Redis(`redis://127.0.0.1:${redisPort}`, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  await redis.ping();
  const regions = [];
  for (const [i, r] of REGIONS.entries())
    regions.push({
      name: r,
      role: i === 0 ? 'primary' : 'replica',
      url: `http://127.0.0.1:${await freePort()}`,
      storage: join(dir, r),
    });
  const metricsPort = await freePort();
  const config = {
    redis: `redis://127.0.0.1:${redisPort}`,
    regions: regions.map(({ name, role, url, storage }) => ({
      name,
      role,
      endpoint: url,
      storage,
    })),
    worker: { metricsListen: `127.0.0.1:${metricsPort}` },
    simulatedLatencyMs: DEV_LATENCY,
    replication: {
      reconcileIntervalSeconds: 30,
      ...(flags.concurrency ? { concurrency: Number(flags.concurrency) } : {}),
    },
    auth: { enabled: false },
    log: { level: 'warn' },
  };
  const configFile = join(dir, 'cluster.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const pids = [redisPid];
  for (const r of regions)
    pids.push(
      spawnChild(`${name}-${r.name}`, process.execPath, [
        ...[MERIDIAN_CLI, 'serve', '--config', configFile, '--region', r.name],
      ]),
    );
  await Promise.all(regions.map((r) => waitHttp(`${r.url}/readyz`)));
  pids.push(
    spawnChild(`${name}-worker`, process.execPath, [
      ...(flags['profile-worker'] ? ['--cpu-prof', '--cpu-prof-dir', flags['profile-worker']] : []),
      MERIDIAN_CLI,
      'worker',
      '--config',
      configFile,
    ]),
  );
  const workerUrl = `http://127.0.0.1:${metricsPort}`;
  await waitHttp(`${workerUrl}/healthz`);
  return {
    regions,
    replicas: regions.slice(1),
    primary: regions[0],
    redis,
    workerUrl,
    async stop() {
      redis.disconnect();
      for (const pid of pids.reverse()) await stopChild(pid);
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

async function scrape(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}
const sumOf = (s, name, where = {}) =>
  s
    .filter((x) => x.name === name && Object.entries(where).every(([k, v]) => x.labels[k] === v))
    .reduce((a, x) => a + x.value, 0);

async function redisCommands(redis) {
  const info = await redis.info('commandstats');
  let total = 0;
  for (const m of info.matchAll(/calls=(\d+)/g)) total += Number(m[1]);
  return total;
}

/**
 * Watches each pushed image's tag file in every replica's storage; resolves when all are there.
 * Samples the worker's queue depth every 500 ms meanwhile.
 */
function watcher(cluster) {
  const images = [];
  const depth = [];
  let stop = false;
  const started = now();
  const loop = (async () => {
    let lastDepth = 0;
    while (!stop) {
      const t = now();
      for (const img of images)
        for (const r of cluster.replicas)
          if (img.visible[r.name] === undefined && existsSync(join(r.storage, img.tagFile)))
            img.visible[r.name] = t;
      if (t - lastDepth >= 500) {
        lastDepth = t;
        Promise.all(
          cluster.replicas.map((r) => cluster.redis.zcard(`meridian:repl:${r.name}:pending`)),
        )
          .then((counts) => {
            const row = { t: (t - started) / 1000 };
            for (const [i, r] of cluster.replicas.entries()) row[r.name] = counts[i];
            depth.push(row);
          })
          .catch(() => {});
      }
      await sleep(20);
    }
  })();
  return {
    images,
    depth,
    add(repo, tag, putAt) {
      images.push({
        repo,
        putAt,
        visible: {},
        tagFile: join('repositories', repo, '_manifests', 'tags', tag, 'current'),
      });
    },
    async done(timeoutMs = 300_000) {
      const deadline = Date.now() + timeoutMs;
      while (
        images.some((i) => cluster.replicas.some((r) => i.visible[r.name] === undefined)) &&
        Date.now() < deadline
      )
        await sleep(50);
      stop = true;
      await loop;
    },
  };
}

const q = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
};
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '—');

async function measure(name, cluster, push) {
  const w = watcher(cluster);
  const before = await scrape(cluster.workerUrl);
  const redisBefore = await redisCommands(cluster.redis);
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const t0 = now();
  const { lastPut, count } = await push(w);
  const pushSeconds = (lastPut - t0) / 1000;
  await w.done();
  const after = await scrape(cluster.workerUrl);
  const redisAfter = await redisCommands(cluster.redis);
  const rows = cluster.replicas.map((r) => {
    const lags = w.images.map((i) => (i.visible[r.name] - i.putAt) / 1000);
    const complete = Math.max(...w.images.map((i) => i.visible[r.name]));
    const delta = (m) => sumOf(after, m, { region: r.name }) - sumOf(before, m, { region: r.name });
    return {
      region: r.name,
      afterLast: (complete - lastPut) / 1000,
      p50: q(lags, 0.5),
      p99: q(lags, 0.99),
      max: Math.max(...lags),
      sourceRequests: delta('meridian_replication_source_requests_total') / count,
      maxDepth: Math.max(0, ...w.depth.map((d) => d[r.name] ?? 0)),
    };
  });
  const redisPerImageRegion = (redisAfter - redisBefore) / count / cluster.replicas.length;
  return { name, load, pushSeconds, count, rows, depth: w.depth, redisPerImageRegion };
}

/** The burst: 4 clients take images off one list (the two large ones among the small). */
async function burst(cluster) {
  const large = Array.from({ length: 2 }, (_, i) =>
    makeImage([streamBlob(`burst-large-${i}-${Date.now()}`, LARGE_MIB * MiB)]),
  );
  const list = [];
  for (let i = 0; i < SMALL; i++) {
    if (i === Math.floor(SMALL / 4) || i === Math.floor((3 * SMALL) / 4))
      list.push({ repo: `burst/large-${list.length}`, image: large.pop() });
    list.push({ repo: `burst/small-${i}`, image: smallImage() });
  }
  while (large.length) list.push({ repo: `burst/large-${list.length}`, image: large.pop() });
  return measure('burst', cluster, async (w) => {
    let lastPut = 0;
    const next = () => list.shift();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const c = new RegistryClient(cluster.primary.url);
        for (let job = next(); job; job = next()) {
          await c.pushImage(job.repo, 'v1', job.image);
          const t = now();
          lastPut = Math.max(lastPut, t);
          w.add(job.repo, 'v1', t);
        }
        c.close();
      }),
    );
    return { lastPut, count: SMALL + 2 };
  });
}

/** Sustained: RATE small-image pushes per second for SECONDS. */
async function sustained(cluster) {
  const n = RATE * SECONDS;
  return measure('sustained', cluster, async (w) => {
    const c = new RegistryClient(cluster.primary.url, { maxSockets: 64 });
    const start = now();
    let lastPut = 0;
    const pushes = [];
    for (let i = 0; i < n; i++) {
      const wait = start + (i * 1000) / RATE - now();
      if (wait > 0) await sleep(wait);
      const repo = `sustained/img-${i}`;
      pushes.push(
        c.pushImage(repo, 'v1', smallImage()).then(() => {
          const t = now();
          lastPut = Math.max(lastPut, t);
          w.add(repo, 'v1', t);
        }),
      );
    }
    await Promise.all(pushes);
    c.close();
    return { lastPut, count: n };
  });
}

function report(results) {
  const lines = [];
  for (const r of results) {
    lines.push(
      `### ${r.name}: ${r.count} images, pushed in ${f(r.pushSeconds)} s (load average at the start ${r.load})`,
      '',
      '| Region | Last push → complete (s) | Lag p50 (s) | Lag p99 (s) | Lag max (s) | Backlog max (objects) | Primary-store requests per image |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...r.rows.map(
        (x) =>
          `| ${x.region} | ${f(x.afterLast)} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.max)} | ${x.maxDepth} | ${f(x.sourceRequests, 1)} |`,
      ),
      '',
      `Redis commands per image per region: ${f(r.redisPerImageRegion, 0)}. Backlog (objects with a change not yet applied) over time, s → ${r.rows.map((x) => x.region).join(' / ')}: ` +
        r.depth
          .filter((_, i) => i % Math.max(1, Math.floor(r.depth.length / 16)) === 0)
          .map((d) => `${f(d.t, 1)} → ${r.rows.map((x) => d[x.region] ?? 0).join('/')}`)
          .join(', '),
      '',
    );
  }
  return lines.join('\n');
}

async function main() {
  const which = flags.scenario === 'both' ? ['burst', 'sustained'] : [flags.scenario];
  const results = [];
  for (const s of which) {
    log(`${s}: starting a cluster (dev latencies ${JSON.stringify(DEV_LATENCY)})`);
    const cluster = await startCluster(`burst-${s}`);
    try {
      results.push(s === 'burst' ? await burst(cluster) : await sustained(cluster));
    } finally {
      await cluster.stop();
    }
  }
  const text = report(results);
  console.log(text);
  if (flags.out) writeFileSync(flags.out, text);
}

main().catch(async (err) => {
  console.error(err);
  for (const pid of children.keys()) await stopChild(pid);
  process.exit(1);
});
