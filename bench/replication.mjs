// `pnpm bench:replication`: how fast a push on the primary becomes pullable from every replica
// region, and how fast the workers copy bytes, on loopback with filesystem storage. For 1, 2 and
// 4 replica regions it starts a fresh cluster (redis-server, `meridian serve` per region, one
// `meridian worker` process) on fresh temp directories, pushes to the primary and watches each
// replica's own storage directory until the image is complete there. Writes
// docs/benchmarks-replication.md and prints the tables. Needs `pnpm build` and redis-server.
//
//   node bench/replication.mjs [--quick] [--no-write] [--replicas=1,2,4] [--concurrency=N]
//                              [--only=small,shared,large] [--large-runs=K] [--rate=IMAGES_PER_S]
//                              [--profile-worker=DIR] [--redis-monitor] [--worker-per-region]
//                              [--out=FILE]
//   node bench/replication.mjs --only=burst|sustained|load [--quick] [--concurrency=N]
//   node bench/replication.mjs --only=herd [--clients=N] [--layer-mib=N] [--wan-mib-s=N]
//
// --out=FILE writes the report to FILE whatever the other flags (docs/ is left alone).
//
// --profile-worker=DIR runs the worker with --cpu-prof and leaves its profiles in DIR.
// --worker-per-region runs one `meridian worker --region R` process per replica region instead
// of one process for all of them.
// --redis-monitor counts the commands clients send to Redis (MONITOR; scripts' inner calls
// excluded) during the small images, per image and region (it slows Redis down a little).
// Any of --replicas, --concurrency, --only, --large-runs, --rate implies --no-write (the doc shows the
// defaults).
// --quick shrinks every size (a smoke test; implies --no-write). --concurrency sets the worker's
// jobs per region (default: the config default, 4). MERIDIAN_BENCH_CLI=/path/to/main.js
// benchmarks another build (e.g. a clean clone of HEAD, when this checkout holds other people's
// unfinished edits).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { cpus } from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RegistryClient } from './lib/client.mjs';
import { keystream, makeImage, memBlob, MiB, smallImage, streamBlob } from './lib/content.mjs';
import {
  benchRoot,
  cleanup,
  cleanupSync,
  freePort,
  MERIDIAN_CLI,
  REPO_ROOT,
  tempDir,
} from './lib/procs.mjs';
import { cpuWatch, waitForQuiet } from './lib/quiet.mjs';
import { machineInfo } from './lib/report.mjs';
import { LOAD_SECTION } from './replication-load-profile.mjs';

const run = promisify(execFile);
const MB = 1e6;

// Burst and sustained load (issue 18) run in bench/replication-burst.mjs, on a cluster with
// `meridian dev`'s simulated latencies: `--only=burst`, `--only=sustained` or `--only=load` (both).
// The herd of cold pulls at a replica runs in bench/replication-herd.mjs: `--only=herd`.
const loadOnly = /^--only=(burst|sustained|load|herd)$/.exec(
  process.argv.slice(2).find((a) => a.startsWith('--only=')) ?? '',
);
if (loadOnly) {
  const rest = process.argv.slice(2).filter((a) => !a.startsWith('--only='));
  const scenario = loadOnly[1] === 'load' ? 'both' : loadOnly[1];
  const child = spawn(
    process.execPath,
    loadOnly[1] === 'herd'
      ? [join(REPO_ROOT, 'bench', 'replication-herd.mjs'), ...rest]
      : [join(REPO_ROOT, 'bench', 'replication-burst.mjs'), `--scenario=${scenario}`, ...rest],
    { stdio: 'inherit' },
  );
  const code = await new Promise((done) => child.once('exit', (c) => done(c ?? 1)));
  process.exit(code);
}

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    replicas: { type: 'string' },
    concurrency: { type: 'string' },
    only: { type: 'string' },
    'large-runs': { type: 'string' },
    'profile-worker': { type: 'string' },
    rate: { type: 'string' },
    'redis-monitor': { type: 'boolean', default: false },
    'worker-per-region': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

const CONFIG = flags.quick
  ? {
      small: 20,
      rate: 10,
      large: 64 * MiB,
      largeRuns: 1,
      shared: 5,
      baseSize: 8 * MiB,
      replicas: [1, 2],
      rawRuns: 1,
    }
  : {
      small: 100,
      rate: 10,
      large: 256 * MiB,
      largeRuns: 5,
      shared: 20,
      baseSize: 8 * MiB,
      replicas: [1, 2, 4],
      rawRuns: 3,
    };
if (flags.replicas) CONFIG.replicas = flags.replicas.split(',').map(Number);
for (const n of CONFIG.replicas)
  if (!(n >= 1 && n <= 4)) throw new Error(`--replicas: 1 to 4 replica regions, not ${n}`);
if (flags['large-runs']) CONFIG.largeRuns = Number(flags['large-runs']);
if (flags.rate) CONFIG.rate = Number(flags.rate);
const CONCURRENCY = flags.concurrency ? Number(flags.concurrency) : undefined;
const PER_REGION = flags['worker-per-region'];
const SCENARIOS = ['small', 'shared', 'large'];
const only = flags.only ? flags.only.split(',') : SCENARIOS;
for (const o of only)
  if (!SCENARIOS.includes(o))
    throw new Error(`--only: unknown scenario ${o} (${SCENARIOS.join(', ')})`);
const write =
  !flags['no-write'] &&
  !flags.quick &&
  !flags.replicas &&
  !flags.only &&
  !flags['large-runs'] &&
  !flags.rate &&
  !flags['worker-per-region'] &&
  !flags.concurrency;

/**
 * Pause before each timed large copy (raw or replicated): this virtual disk writes fast after a
 * rest and several times slower after a couple of GB in a row, so every timed copy starts rested.
 */
const REST_MS = 2000;

/** Client-side poll interval of each replica's storage. */
const POLL_MS = 20;
const REPLICA_NAMES = ['westeurope', 'southeastasia', 'westus', 'japaneast'];
const TARGETS = { smallP99: 1, copyRatio: 0.8 };

const log = (msg) => process.stderr.write(`[bench:replication] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Wall-clock milliseconds with sub-ms precision (comparable with file mtimes). */
const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// Child processes: everything started here is tracked and stopped by PID.

const children = new Map();

function spawnChild(name, cmd, args, env = process.env) {
  const logFile = join(benchRoot(), `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise((ok) => child.once('exit', () => ok()));
  children.set(child.pid, { child, exited, name });
  child.once('exit', () => children.delete(child.pid));
  return { pid: child.pid, logFile, name };
}

async function stopChild(pid, graceMs = 5000) {
  const entry = children.get(pid);
  if (!entry) return;
  entry.child.kill('SIGTERM');
  const timer = setTimeout(() => entry.child.kill('SIGKILL'), graceMs);
  await entry.exited;
  clearTimeout(timer);
}

function tail(file, n = 2000) {
  try {
    return readFileSync(file, 'utf8').slice(-n);
  } catch {
    return '';
  }
}

async function waitHttp(url, proc, ok = (s) => s === 200, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!children.has(proc.pid))
      throw new Error(`${proc.name} exited at start-up:\n${tail(proc.logFile)}`);
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (ok(r.status)) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${proc.name} not ready in ${timeoutMs / 1000} s:\n${tail(proc.logFile)}`);
    await sleep(50);
  }
}

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping child processes and removing temp files`);
    void Promise.all([...children.keys()].map((pid) => stopChild(pid)))
      .then(() => cleanup())
      .finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  for (const { child } of children.values()) child.kill('SIGKILL');
  cleanupSync();
});

// ---------------------------------------------------------------------------------------------
// The cluster.

/** Environment for the children: the config file decides, not the caller's MERIDIAN_* variables. */
function childEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('MERIDIAN_')) delete env[k];
  return env;
}

async function startRedis(dir) {
  const port = await freePort();
  const proc = spawnChild(`redis-${port}`, 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: null,
  });
  client.on('error', () => {}); // refused until redis-server listens; the loop below retries
  for (let i = 0; ; i++) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      if (i > 100 || !children.has(proc.pid)) throw new Error(`redis-server: ${err.message}`);
      await sleep(50);
    }
  }
  return { ...proc, url, client };
}

/** Whether the CLI under test knows the `auth` config key (builds before it reject the key). */
function cliHasAuth() {
  try {
    return readFileSync(join(dirname(MERIDIAN_CLI), 'config.js'), 'utf8').includes('auth: zod_1.z');
  } catch {
    return true;
  }
}

/**
 * A primary (eastus) and `n` replica regions, each on its own temp directory, one node process
 * per region and one worker process for every replica region (the default deployment), or one
 * worker process per replica region.
 */
async function startCluster(n, perRegion = PER_REGION) {
  const dir = tempDir(`cluster-${n}`);
  const redis = await startRedis(dir);
  const names = ['eastus', ...REPLICA_NAMES.slice(0, n)];
  const regions = [];
  for (const [i, name] of names.entries()) {
    const port = await freePort();
    regions.push({
      name,
      role: i === 0 ? 'primary' : 'replica',
      url: `http://127.0.0.1:${port}`,
      storage: join(dir, name),
    });
  }
  const metricsPort = await freePort();
  const config = {
    redis: redis.url,
    regions: regions.map((r) => ({
      name: r.name,
      role: r.role,
      endpoint: r.url,
      storage: r.storage,
    })),
    replication: { prefix: 'bench', reconcileIntervalSeconds: 3600 },
    worker: { metricsListen: `127.0.0.1:${metricsPort}` },
    log: { level: 'warn' },
    // Replication is measured, not authentication: the bench's client sends no credentials.
    ...(cliHasAuth() ? { auth: { enabled: false } } : {}),
  };
  const configFile = join(dir, 'cluster.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const env = childEnv();
  for (const r of regions) {
    r.proc = spawnChild(
      `c${n}-${r.name}`,
      process.execPath,
      [MERIDIAN_CLI, 'serve', '--config', configFile, '--region', r.name],
      env,
    );
    r.pid = r.proc.pid;
  }
  await Promise.all(regions.map((r) => waitHttp(`${r.url}/readyz`, r.proc)));
  const prof = flags['profile-worker'];
  const startWorker = async (region, port) => {
    const name = `c${n}-worker${region ? `-${region}` : ''}`;
    const args = [
      ...(prof
        ? ['--cpu-prof', '--cpu-prof-dir', prof, '--cpu-prof-name', `${name}.cpuprofile`]
        : []),
      MERIDIAN_CLI,
      'worker',
      '--config',
      configFile,
      '--metrics-listen',
      `127.0.0.1:${port}`,
      ...(region ? ['--region', region] : []),
      ...(CONCURRENCY ? ['--concurrency', String(CONCURRENCY)] : []),
    ];
    const w = spawnChild(name, process.execPath, args, env);
    w.url = `http://127.0.0.1:${port}`;
    await waitHttp(`${w.url}/healthz`, w);
    return w;
  };
  const workers = perRegion
    ? await Promise.all(regions.slice(1).map(async (r) => startWorker(r.name, await freePort())))
    : [await startWorker(undefined, metricsPort)];
  const primary = regions[0];
  return {
    n,
    dir,
    redis,
    regions,
    primary,
    replicas: regions.slice(1),
    workers,
    configFile,
    pids: [redis.pid, ...workers.map((w) => w.pid), ...regions.map((r) => r.pid)],
    async stop() {
      redis.client.disconnect();
      await Promise.all(workers.map((w) => stopChild(w.pid)));
      await Promise.all(regions.map((r) => stopChild(r.pid)));
      await stopChild(redis.pid);
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** Parses Prometheus text into `[{name, labels, value}]`. */
async function scrape(url) {
  const r = await fetch(`${url}/metrics`);
  const text = await r.text();
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

const sumOf = (samples, name, where = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);

/** Worker counters per region: bytes copied, copy seconds, copies. */
async function workerCounters(cluster) {
  const s = (await Promise.all(cluster.workers.map((w) => scrape(w.url)))).flat();
  const out = {};
  for (const r of cluster.replicas) {
    out[r.name] = {
      bytes: sumOf(s, 'meridian_replication_bytes_copied_total', { region: r.name }),
      copySeconds: sumOf(s, 'meridian_replication_copy_duration_seconds_sum', { region: r.name }),
      copies: sumOf(s, 'meridian_replication_copy_duration_seconds_count', { region: r.name }),
      modes: [
        ...new Set(
          s
            .filter(
              (x) =>
                x.name === 'meridian_replication_bytes_copied_total' &&
                x.labels.region === r.name &&
                x.value > 0,
            )
            .map((x) => x.labels.mode),
        ),
      ],
    };
  }
  return out;
}

function diffCounters(a, b) {
  const out = {};
  for (const [region, x] of Object.entries(b)) {
    const y = a[region];
    out[region] = {
      bytes: x.bytes - y.bytes,
      copySeconds: x.copySeconds - y.copySeconds,
      copies: x.copies - y.copies,
      modes: x.modes,
    };
  }
  return out;
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s
      .slice(s.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    return (f[11] + f[12]) / 100;
  } catch {
    return NaN;
  }
}

/** Redis calls so far, by command (`INFO commandstats`). */
async function redisCalls(redis) {
  const out = {};
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    out[m[1]] = Number(m[2]);
  return out;
}

/** CPU seconds and storage writes of all the cluster's worker processes. */
const workersCpu = (cluster) => cluster.workers.reduce((a, w) => a + cpuSeconds(w.pid), 0);
const workersWrites = (cluster) => cluster.workers.reduce((a, w) => a + processWrites(w.pid), 0);

/** Bytes written to the block device holding `path` so far (all processes). */
function deviceWrites(path) {
  const dev = statSync(path).dev;
  const major = Number((BigInt(dev) >> 8n) & 0xfffn);
  const minor = Number((BigInt(dev) & 0xffn) | ((BigInt(dev) >> 12n) & ~0xffn));
  for (const line of readFileSync('/proc/diskstats', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (Number(f[0]) === major && Number(f[1]) === minor) return Number(f[9]) * 512;
  }
  return NaN;
}

/** Bytes a process has caused to be written to storage so far. */
function processWrites(pid) {
  try {
    return Number(/^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))[1]);
  } catch {
    return NaN;
  }
}

/** Waits until no replica has an unapplied change or a queued job (the primary's view). */
async function waitDrained(cluster, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(`${cluster.primary.url}/meridian/v1/replication/regions`);
    const { regions } = await r.json();
    const busy = regions.filter(
      (x) =>
        x.role === 'replica' &&
        (x.pending !== 0 || !x.queue || x.queue.waiting + x.queue.active + x.queue.delayed > 0),
    );
    if (!busy.length) return;
    if (Date.now() > deadline)
      throw new Error(
        `replication did not drain in ${timeoutMs / 1000} s: ${JSON.stringify(busy)}`,
      );
    await sleep(100);
  }
}

/** Sum of file sizes under a region's `blobs/` (what the region holds, once per digest). */
async function blobBytesOnDisk(storage) {
  let total = 0;
  const walk = async (d) => {
    let entries;
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) total += (await fsp.stat(p)).size;
    }
  };
  await walk(join(storage, 'blobs'));
  return total;
}

// ---------------------------------------------------------------------------------------------
// Watching replicas' own storage (never HEAD: a replica answers a miss from the primary).

const hexOf = (digest) => digest.slice('sha256:'.length);
const blobPath = (root, digest) =>
  join(root, 'blobs', 'sha256', hexOf(digest).slice(0, 2), hexOf(digest), 'data');

/** What makes `image` pullable by tag from a region's own storage, as paths to check. */
function imageChecks(root, repo, tag, image) {
  const repoDir = join(root, 'repositories', ...repo.split('/'));
  const blobs = [image.config, ...image.layers];
  return {
    tagFile: join(repoDir, '_manifests', 'tags', tag, 'current'),
    digest: image.manifest.digest,
    files: [
      { path: blobPath(root, image.manifest.digest), size: image.manifest.bytes.length },
      {
        path: join(
          repoDir,
          '_manifests',
          'revisions',
          'sha256',
          hexOf(image.manifest.digest),
          'link',
        ),
      },
      ...blobs.flatMap((b) => [
        { path: blobPath(root, b.digest), size: b.size },
        { path: join(repoDir, '_layers', 'sha256', hexOf(b.digest), 'link') },
      ]),
    ],
  };
}

/**
 * Checks a region's storage: the tag names the manifest, and the manifest, its revision link,
 * every blob (full size) and every layer link are there. Returns the tag file's mtime (when the
 * region made the image visible) and the latest mtime of the rest (visibility order check), or
 * undefined when incomplete.
 */
async function checkImage(c) {
  let tag;
  try {
    const [text, st] = await Promise.all([fsp.readFile(c.tagFile, 'utf8'), fsp.stat(c.tagFile)]);
    tag = { ...JSON.parse(text), mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  }
  if (tag.digest !== c.digest) return undefined;
  let latest = 0;
  for (const f of c.files) {
    let st;
    try {
      st = await fsp.stat(f.path);
    } catch {
      return { incompleteTag: true };
    }
    if (f.size !== undefined && st.size !== f.size) return { incompleteTag: true };
    latest = Math.max(latest, st.mtimeMs);
  }
  return { tagMtime: tag.mtimeMs, contentMtime: latest };
}

/** Polls every `POLL_MS` until each tracked check passes; resolves each with when it did. */
class Watcher {
  constructor() {
    this.pending = new Set();
    this.timer = undefined;
    /** A tag visible before its content was complete (must never happen). */
    this.orderViolations = 0;
    /** Content written after its tag, by mtime (must never happen either). */
    this.mtimeOrderViolations = 0;
  }

  /** Resolves `{observedAt, tagMtime, contentMtime}` once `check()` passes. */
  watch(check) {
    return new Promise((resolve, reject) => {
      this.pending.add({ check, resolve, reject, violated: false });
      this.timer ??= setTimeout(() => void this.tick(), 0);
    });
  }

  async tick() {
    const items = [...this.pending];
    await Promise.all(
      items.map(async (it) => {
        try {
          const r = await it.check();
          const at = now();
          if (r?.incompleteTag) {
            if (!it.violated) this.orderViolations++;
            it.violated = true;
          } else if (r) {
            this.pending.delete(it);
            it.resolve({ observedAt: at, ...r });
          }
        } catch (err) {
          this.pending.delete(it);
          it.reject(err);
        }
      }),
    );
    this.timer = this.pending.size ? setTimeout(() => void this.tick(), POLL_MS) : undefined;
  }
}

/** Watches one pushed image in every replica; resolves per-region lag samples (seconds). */
async function watchImage(watcher, cluster, { repo, tag, image, tPut }) {
  const per = await Promise.all(
    cluster.replicas.map(async (r) => {
      const v = await watcher.watch(() => checkImage(imageChecks(r.storage, repo, tag, image)));
      if (v.contentMtime > v.tagMtime + 1) watcher.mtimeOrderViolations++;
      return {
        region: r.name,
        observed: (v.observedAt - tPut) / 1000,
        storage: (v.tagMtime - tPut) / 1000,
      };
    }),
  );
  return {
    repo,
    tag,
    per,
    /** Pullable from every replica: the slowest region. */
    all: Math.max(...per.map((p) => p.observed)),
    allStorage: Math.max(...per.map((p) => p.storage)),
  };
}

/** Cross-checks with the status API (each replica node answers for every region). */
async function statusCheck(cluster, images) {
  let notReplicated = 0;
  const serverLag = [];
  for (const [i, { repo, tag }] of images.entries()) {
    const node = cluster.replicas[i % cluster.replicas.length];
    const q = new URLSearchParams({ repository: repo, reference: tag });
    const r = await fetch(`${node.url}/meridian/v1/replication/status?${q}`);
    const body = await r.json();
    for (const x of body.regions ?? []) {
      if (x.role !== 'replica') continue;
      if (x.state !== 'replicated') notReplicated++;
      else serverLag.push(x.lagSeconds);
    }
  }
  return { checked: images.length, notReplicated, serverLag: quantiles(serverLag) };
}

/** The replica fallback counter the nodes increment (registry's metrics module). */
const FALLBACKS = 'meridian_replica_fallbacks_total';

/** A node's fallback count; throws when the node does not export the counter at all. */
async function fallbackCount(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  if (!text.includes(`# TYPE ${FALLBACKS} counter`))
    throw new Error(`${url}/metrics has no ${FALLBACKS}: the fallback check would never fail`);
  return sumOf(await scrape(url), FALLBACKS);
}

/** Pulls one image from each replica and checks that no read fell back to the primary. */
async function pullCheck(cluster, { repo, tag }) {
  let bytes = 0;
  let fallbacks = 0;
  for (const r of cluster.replicas) {
    const before = await fallbackCount(r.url);
    const client = new RegistryClient(r.url);
    try {
      bytes += await client.pullImage(repo, tag);
    } finally {
      client.close();
    }
    fallbacks += (await fallbackCount(r.url)) - before;
  }
  if (fallbacks > 0)
    throw new Error(`${fallbacks} reads of ${repo}:${tag} fell back to the primary (${FALLBACKS})`);
  return { bytes, fallbacks };
}

// ---------------------------------------------------------------------------------------------
// Statistics.

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function quantiles(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return {
    n: s.length,
    p50: quantile(s, 0.5),
    p99: quantile(s, 0.99),
    max: s.length ? s[s.length - 1] : NaN,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN,
  };
}

/**
 * Where the time went, from BullMQ's own job records (the last completed jobs of each region's
 * queue): commit → picked up by a worker, and picked up → finished, per job kind.
 */
async function jobBreakdown(cluster, sinceMs) {
  const redis = cluster.redis.client;
  const kinds = {};
  let delayedRetries = 0;
  for (const r of cluster.replicas) {
    const base = `bench:bull:sync-${r.name}`;
    const ids = await redis.zrange(`${base}:completed`, 0, -1);
    const pipe = redis.pipeline();
    for (const id of ids)
      pipe.hmget(`${base}:${id}`, 'data', 'timestamp', 'processedOn', 'finishedOn', 'ats', 'atm');
    const rows = (await pipe.exec()) ?? [];
    for (const [err, v] of rows) {
      if (err || !v?.[0]) continue;
      const data = JSON.parse(v[0]);
      if (data.committedAt < sinceMs) continue;
      const [added, processed, finished] = [Number(v[1]), Number(v[2]), Number(v[3])];
      const k = (kinds[data.target.kind] ??= { wait: [], run: [], queued: [] });
      k.queued.push((added - data.committedAt) / 1000);
      k.wait.push((processed - added) / 1000);
      k.run.push((finished - processed) / 1000);
      if (Number(v[4] ?? 0) > 1) delayedRetries++;
    }
  }
  const out = {};
  for (const [kind, k] of Object.entries(kinds))
    out[kind] = { queued: quantiles(k.queued), wait: quantiles(k.wait), run: quantiles(k.run) };
  return { kinds: out, delayedRetries };
}

// ---------------------------------------------------------------------------------------------
// Raw copy speed of the storage the regions sit on.

async function fsyncFile(path) {
  const fh = await fsp.open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function timedMBps(bytes, fn) {
  const t0 = performance.now();
  await fn();
  return bytes / MB / ((performance.now() - t0) / 1000);
}

/** `fs.copyFile` + fsync, `k` copies at once: what the fs driver does for a replica copy. */
async function rawCopyFile(src, dir, size, k = 1) {
  const dsts = Array.from({ length: k }, (_, i) => join(dir, `copy-${i}`));
  const mbps = await timedMBps(size * k, () =>
    Promise.all(
      dsts.map(async (d) => {
        await fsp.copyFile(src, d);
        await fsyncFile(d);
      }),
    ),
  );
  await Promise.all(dsts.map((d) => fsp.rm(d, { force: true })));
  return mbps;
}

/**
 * The raw copy as replication meets it: a fresh `size`-byte file is written and fsynced (what the
 * upload does on the primary), then `k` copies of it are made at once, timed. After a rest, like
 * each replication run, so both start from the same disk state.
 */
async function rawCopyFresh(dir, size, k) {
  await sleep(REST_MS);
  const src = join(dir, `fresh-${Date.now()}`);
  const out = createWriteStream(src);
  for (const chunk of keystream(src, size))
    if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
  await new Promise((ok, fail) => out.end((err) => (err ? fail(err) : ok())));
  await fsyncFile(src);
  const mbps = await rawCopyFile(src, dir, size, k);
  await fsp.rm(src, { force: true });
  return mbps;
}

async function rawCp(src, dir, size) {
  const dst = join(dir, 'cp');
  const mbps = await timedMBps(size, () => run('cp', [src, dst]));
  await fsp.rm(dst, { force: true });
  return mbps;
}

/** A streamed read → sha256 → write (+fsync) in Node: the ceiling of a digest-verified copy. */
async function rawVerifiedStream(src, dir, size) {
  const dst = join(dir, 'stream');
  const mbps = await timedMBps(size, async () => {
    const hash = createHash('sha256');
    const hasher = new Transform({
      transform(chunk, _e, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(
      createReadStream(src, { highWaterMark: MiB }),
      hasher,
      createWriteStream(dst, { highWaterMark: MiB }),
    );
    hash.digest('hex');
    await fsyncFile(dst);
  });
  await fsp.rm(dst, { force: true });
  return mbps;
}

/** A `size`-byte file of random bytes in its own temp directory, fsynced. */
async function rawSource(name, size) {
  const dir = tempDir(name);
  const src = join(dir, 'src');
  const out = createWriteStream(src);
  for (const chunk of keystream(name, size))
    if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
  await new Promise((ok, fail) => out.end((err) => (err ? fail(err) : ok())));
  await fsyncFile(src);
  return { dir, src };
}

async function rawCopySpeeds(size, runs, replicaCounts) {
  const { dir, src } = await rawSource('raw-copy', size);
  const res = { copyFile: [], cp: [], verified: [], parallel: {} };
  for (let i = 0; i < runs; i++) {
    res.copyFile.push(await rawCopyFile(src, dir, size));
    res.cp.push(await rawCp(src, dir, size));
    res.verified.push(await rawVerifiedStream(src, dir, size));
  }
  for (const k of replicaCounts.filter((k) => k > 1))
    res.parallel[k] = [await rawCopyFile(src, dir, size, k)];
  res.parallel[1] = res.copyFile;
  await fsp.rm(dir, { recursive: true, force: true });
  return res;
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/** Many small images (config + 2 × 4 KiB), one repository each, started at a steady rate. */
async function smallImages(cluster, watcher, { count, rate }) {
  const client = new RegistryClient(cluster.primary.url);
  try {
    const warm = smallImage();
    await client.pushImage('warmup/small', 'v1', warm);
    await watchImage(watcher, cluster, {
      repo: 'warmup/small',
      tag: 'v1',
      image: warm,
      tPut: now(),
    });
    await waitDrained(cluster);
    const images = Array.from({ length: count }, () => smallImage(2, 4096));
    const since = Date.now();
    const t0 = now();
    const interval = 1000 / rate;
    const watches = [];
    const pushMs = [];
    for (let i = 0; i < count; i++) {
      const wait = t0 + i * interval - now();
      if (wait > 0) await sleep(wait);
      const repo = `small/app-${i}`;
      const start = now();
      await client.pushImage(repo, 'v1', images[i]);
      const tPut = now();
      pushMs.push(tPut - start);
      watches.push(watchImage(watcher, cluster, { repo, tag: 'v1', image: images[i], tPut }));
    }
    const pushSeconds = (now() - t0) / 1000;
    const results = await Promise.all(watches);
    await waitDrained(cluster);
    return {
      results,
      achievedRate: count / pushSeconds,
      pushMs: quantiles(pushMs),
      since,
      sample: { repo: results[0].repo, tag: 'v1' },
    };
  } finally {
    client.close();
  }
}

/**
 * One large layer per run: POST, one streamed PATCH, PUT (the blob job starts here), then the
 * manifest. Copy throughput per region: bytes ÷ (blob visible in the region − upload committed).
 */
async function largeLayer(cluster, watcher, { blobs, raw }) {
  const client = new RegistryClient(cluster.primary.url, { timeoutMs: 300_000 });
  const runs = [];
  const n = cluster.replicas.length;
  try {
    for (const [i, blob] of blobs.entries()) {
      const repo = `large/app-${i}`;
      const image = makeImage([blob]);
      // The same work without Meridian, just before and just after: N copies at once.
      const rawBefore = await rawCopyFresh(raw.dir, blob.size, n);
      await sleep(REST_MS);
      const before = await workerCounters(cluster);
      const cpu0 = workersCpu(cluster);
      await client.pushBlob(repo, image.config);
      const tUpload = now();
      await client.pushBlob(repo, blob);
      const tBlob = now();
      const disk0 = deviceWrites(cluster.dir);
      const worker0 = workersWrites(cluster);
      const blobVisible = Promise.all(
        cluster.replicas.map(async (r) => {
          const path = blobPath(r.storage, blob.digest);
          const v = await watcher.watch(async () => {
            const st = await fsp.stat(path).catch(() => undefined);
            return st && st.size === blob.size
              ? { tagMtime: st.mtimeMs, contentMtime: st.mtimeMs }
              : undefined;
          });
          return { region: r.name, observedAt: v.observedAt, mtime: v.tagMtime };
        }),
      );
      await client.putManifest(repo, 'v1', image.manifest);
      const tPut = now();
      const lag = await watchImage(watcher, cluster, { repo, tag: 'v1', image, tPut });
      const visible = await blobVisible;
      const diskWritten = deviceWrites(cluster.dir) - disk0;
      const workerWritten = workersWrites(cluster) - worker0;
      await waitDrained(cluster);
      const counters = diffCounters(before, await workerCounters(cluster));
      const lastVisible = Math.max(...visible.map((v) => v.observedAt));
      runs.push({
        repo,
        lag,
        pushMBps: blob.size / MB / ((tBlob - tUpload) / 1000),
        manifestAfterBlobMs: tPut - tBlob,
        perRegion: visible.map((v) => ({
          region: v.region,
          // committed → complete in the region, as a client sees it (includes queue pick-up)
          e2eMBps: blob.size / MB / ((v.observedAt - tBlob) / 1000),
          // by the file's mtime (the copy's last write), without the poll interval
          storageMBps: blob.size / MB / ((v.mtime - tBlob) / 1000),
          // the worker's own copy timer (copy_duration_seconds) for this run's copies
          copyMBps: counters[v.region].bytes / MB / counters[v.region].copySeconds,
          bytes: counters[v.region].bytes,
          modes: counters[v.region].modes,
        })),
        aggregateMBps: (blob.size * n) / MB / ((lastVisible - tBlob) / 1000),
        workerCpu: workersCpu(cluster) - cpu0,
        diskWritten,
        workerWritten,
        rawBefore,
        rawAfter: 0,
      });
      await waitDrained(cluster);
      runs.at(-1).rawAfter = await rawCopyFresh(raw.dir, blob.size, n);
      runs.at(-1).rawMBps = (rawBefore + runs.at(-1).rawAfter) / 2;
      runs.at(-1).ratio = runs.at(-1).aggregateMBps / runs.at(-1).rawMBps;
    }
  } finally {
    client.close();
  }
  return { runs };
}

/** `count` images, a repository each, sharing one base layer (mounted, as clients do). */
async function sharedBase(cluster, watcher, { count, baseSize }) {
  const client = new RegistryClient(cluster.primary.url);
  try {
    const base = memBlob(randomBytes(baseSize));
    const images = Array.from({ length: count }, () =>
      makeImage([base, memBlob(randomBytes(4096))]),
    );
    const unique = new Map();
    for (const im of images)
      for (const b of [
        im.config,
        ...im.layers,
        { digest: im.manifest.digest, size: im.manifest.bytes.length },
      ])
        unique.set(b.digest, b.size);
    const uniqueBytes = [...unique.values()].reduce((a, b) => a + b, 0);
    const before = await workerCounters(cluster);
    const disk0 = await Promise.all(cluster.replicas.map((r) => blobBytesOnDisk(r.storage)));
    const cpu0 = workersCpu(cluster);
    const since = Date.now();
    const watches = [];
    for (let i = 0; i < count; i++) {
      const repo = `shared/app-${i}`;
      await client.pushImage(repo, 'v1', images[i], { mountFrom: 'shared/app-0' });
      watches.push(
        watchImage(watcher, cluster, { repo, tag: 'v1', image: images[i], tPut: now() }),
      );
    }
    const results = await Promise.all(watches);
    await waitDrained(cluster);
    const counters = diffCounters(before, await workerCounters(cluster));
    const disk1 = await Promise.all(cluster.replicas.map((r) => blobBytesOnDisk(r.storage)));
    return {
      results,
      since,
      uniqueBytes,
      mounted: client.stats.mounted,
      perRegion: cluster.replicas.map((r, i) => ({
        region: r.name,
        bytesCopied: counters[r.name].bytes,
        copies: counters[r.name].copies,
        bytesOnDisk: disk1[i] - disk0[i],
      })),
      workerCpu: workersCpu(cluster) - cpu0,
      sample: { repo: results[0].repo, tag: 'v1' },
    };
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const mb = (x) => (Number.isFinite(x) ? (x / MB).toFixed(2) : 'n/a');
const median = (xs) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
const best = (xs) => Math.max(...xs);

function table(head, rows, align) {
  const a = align ?? head.map((_, i) => (i === 0 ? 'l' : 'r'));
  return [
    `| ${head.join(' | ')} |`,
    `|${a.map((x) => (x === 'l' ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function lagRows(byN) {
  const rows = [];
  for (const r of byN.values()) {
    const n = r.n;
    const add = (label, results, target) => {
      if (!results) return;
      const all = quantiles(results.map((x) => x.all));
      const st = quantiles(results.map((x) => x.allStorage));
      const per = quantiles(results.flatMap((x) => x.per.map((p) => p.observed)));
      const verdict = target === undefined ? '' : all.p99 < target ? 'met' : '**MISSED**';
      rows.push([
        r.name,
        label,
        all.n,
        f3(all.p50),
        f3(all.p99),
        f3(all.max),
        `${f3(st.p50)} / ${f3(st.p99)}`,
        `${f3(per.p50)} / ${f3(per.p99)}`,
        target === undefined ? '' : `p99 < ${target} s: ${verdict}`,
      ]);
    };
    add(`${CONFIG.small} small images at ${CONFIG.rate}/s`, r.small?.results, TARGETS.smallP99);
    add(
      `${CONFIG.large / MiB} MiB layer (${CONFIG.largeRuns} runs)`,
      r.large?.runs.map((x) => x.lag),
    );
    add(`${CONFIG.shared} images sharing an ${CONFIG.baseSize / MiB} MiB base`, r.shared?.results);
  }
  return table(
    [
      'Replicas',
      'Scenario',
      'Images',
      'p50 (s)',
      'p99 (s)',
      'max (s)',
      'p50 / p99 by storage mtime (s)',
      'p50 / p99 per region (s)',
      'Target',
    ],
    rows,
    ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
}

/** Replication against raw copies of the same size and parallelism, measured around each run. */
function copyFigures(r) {
  const agg = r.large.runs.map((x) => x.aggregateMBps);
  const raw = r.large.runs.flatMap((x) => [x.rawBefore, x.rawAfter]);
  return {
    bestAgg: best(agg),
    medAgg: median(agg),
    bestRaw: best(raw),
    medRaw: median(raw),
    ratio: best(agg) / best(raw),
    medRatio: median(agg) / median(raw),
    // Each run against the raw copies made just before and just after it: the disk's speed
    // swings within seconds, so a run is compared with the disk as it was around that run.
    paired: r.large.runs.map((x) => x.ratio),
    pairedMedian: median(r.large.runs.map((x) => x.ratio)),
  };
}

function copyRows(byN, raw) {
  const baseline = best(raw.copyFile);
  const rows = [];
  for (const r of byN.values()) {
    const n = r.n;
    if (!r.large) continue;
    const runsE2e = r.large.runs.flatMap((x) => x.perRegion.map((p) => p.e2eMBps));
    const runsCopy = r.large.runs.flatMap((x) => x.perRegion.map((p) => p.copyMBps));
    const c = copyFigures(r);
    const other = r.large.runs.map((x) => (x.diskWritten - x.workerWritten) / MB);
    rows.push([
      r.name,
      [...new Set(r.large.runs.flatMap((x) => x.perRegion.flatMap((p) => p.modes)))].join(', '),
      f1(median(runsCopy)),
      f1(median(runsE2e)),
      `${f1(c.bestAgg)} / ${f1(c.medAgg)}`,
      `${f1(c.bestRaw)} / ${f1(c.medRaw)}`,
      `${f1(c.pairedMedian * 100)} % (${c.paired.map((x) => Math.round(x * 100)).join(', ')} %)`,
      `${f1(c.ratio * 100)} % / ${f1(c.medRatio * 100)} %`,
      c.pairedMedian >= TARGETS.copyRatio ? 'met' : '**MISSED**',
      other.map((x) => Math.round(x)).join(', '),
    ]);
  }
  return {
    baseline,
    text: table(
      [
        'Replicas',
        'Copy mode',
        'Per region, copy step (MB/s, median)',
        'Per region, commit → visible (MB/s, median)',
        'All regions together (MB/s, best / median)',
        'Raw: N × `copyFile`+fsync at once, around each run (MB/s, best / median)',
        'Replication ÷ raw around the same run: median of runs (each run)',
        'Replication ÷ raw, best ÷ best / median ÷ median',
        `Target ≥ ${TARGETS.copyRatio * 100} %`,
        'Other processes’ disk writes during each run’s copies (MB)',
      ],
      rows,
    ),
  };
}

function costRows(byN) {
  const rows = [];
  for (const r of byN.values()) {
    const n = r.n;
    if (!r.shared) continue;
    const s = r.shared;
    const copied = s.perRegion.map((p) => p.bytesCopied);
    const total = copied.reduce((a, b) => a + b, 0);
    const large = r.large?.runs ?? [];
    const largeBytes = large.reduce((a, x) => a + x.perRegion.reduce((b, p) => b + p.bytes, 0), 0);
    rows.push([
      r.name,
      mb(s.uniqueBytes),
      copied.map(mb).join(', '),
      s.perRegion.map((p) => mb(p.bytesOnDisk)).join(', '),
      `${mb(total)} (${f2(total / (n * s.uniqueBytes))}× regions × unique)`,
      f2(s.workerCpu / n),
      large.length ? `${mb(largeBytes / n / large.length)}` : '',
      large.length ? f2(large.reduce((a, x) => a + x.workerCpu, 0) / large.length / n) : '',
      r.small ? f2(r.small.workerCpu / n) : '',
    ]);
  }
  return table(
    [
      'Replicas',
      'Shared: unique MB',
      'Shared: MB copied per region (worker counter)',
      'Shared: MB added to each region’s blobs/',
      'Shared: MB copied in all',
      'Shared: worker CPU s per region',
      'Large: MB copied per region per run',
      'Large: worker CPU s per region per run',
      'Small: worker CPU s per region',
    ],
    rows,
  );
}

function breakdownText(byN) {
  const lines = [];
  for (const r of byN.values()) {
    const n = r.n;
    for (const [label, b] of [
      ['small images', r.small?.breakdown],
      ['shared base', r.shared?.breakdown],
    ]) {
      if (!b) continue;
      const parts = Object.entries(b.kinds).map(
        ([kind, k]) =>
          `${kind} (${k.run.n}): commit→queued p50 ${f3(k.queued.p50)} / p99 ${f3(k.queued.p99)}, ` +
          `queued→picked up p50 ${f3(k.wait.p50)} / p99 ${f3(k.wait.p99)}, run p50 ${f3(k.run.p50)} / p99 ${f3(k.run.p99)}`,
      );
      lines.push(
        `- ${r.title}, ${label}: ${parts.join('; ')}; jobs that ran more than once (lock delay or retry): ${b.delayedRetries}`,
      );
    }
  }
  return lines.join('\n');
}

function checksText(byN, watcher) {
  const lines = [];
  for (const r of byN.values()) {
    const n = r.n;
    const parts = [];
    for (const [label, c] of [
      ['small', r.small?.status],
      ['shared', r.shared?.status],
    ]) {
      if (c)
        parts.push(
          `${label}: ${c.checked} images × ${n} regions, ${c.notReplicated} not \`replicated\`, ` +
            `its lagSeconds p50 ${f3(c.serverLag.p50)} / p99 ${f3(c.serverLag.p99)} s`,
        );
    }
    for (const [label, p] of [
      ['small', r.small?.pull],
      ['shared', r.shared?.pull],
    ]) {
      if (p)
        parts.push(
          `pull of one ${label} image from each replica: ${p.fallbacks} fallbacks to the primary`,
        );
    }
    if (r.small?.redisPerImageRegion)
      parts.push(
        `Redis commands executed per small image per region (scripts' inner calls included, INFO commandstats) ${f1(r.small.redisTotalPerImageRegion)} (${Object.entries(
          r.small.redisPerImageRegion,
        )
          .slice(0, 8)
          .map(([k, v]) => `${k} ${f1(v)}`)
          .join(
            ', ',
          )}); small-image lag p50 of the first tenth ${f3(r.small.trend.first)} s, of the last tenth ${f3(r.small.trend.last)} s`,
      );
    if (r.small?.redisSent)
      parts.push(
        `commands sent to Redis per small image per region (MONITOR) ${f1(r.small.redisSent.total)}: ${r.small.redisSent.top
          .slice(0, 12)
          .map(([k, v]) => `${k} ${f1(v)}`)
          .join(', ')}`,
      );
    if (r.small?.cpuByRole)
      parts.push(
        `CPU while the small images ran (cores, of ${cpus().length}): ${Object.entries(
          r.small.cpuByRole,
        )
          .map(([k, v]) => `${k} ${f2(v)}`)
          .join(', ')}`,
      );
    if (r.small)
      parts.push(
        `small pushes achieved ${f1(r.small.achievedRate)}/s (push p50 ${f1(r.small.pushMs.p50)} ms, p99 ${f1(r.small.pushMs.p99)} ms)`,
      );
    if (r.large)
      parts.push(
        `${CONFIG.large / MiB} MiB push ${r.large.runs.map((x) => f1(x.pushMBps)).join(', ')} MB/s; manifest PUT ${r.large.runs.map((x) => f1(x.manifestAfterBlobMs)).join(', ')} ms after the blob committed`,
      );
    lines.push(`- ${r.title}: ${parts.join('; ')}.`);
  }
  lines.push(
    `- Visibility order (blobs → manifest → tag): tags seen before their content was complete ${watcher.orderViolations}; content files newer than their tag file ${watcher.mtimeOrderViolations}.`,
  );
  return lines.join('\n');
}

/** When small images miss the target: where their lag went, from the bench's own measurements. */
function whySmall(byN) {
  const out = [];
  for (const r of byN.values()) {
    const sm = r.small;
    if (!sm) continue;
    const q = quantiles(sm.results.map((x) => x.all));
    if (q.p99 < TARGETS.smallP99) continue;
    const waits = Object.values(sm.breakdown.kinds).map((k) => k.wait.p50);
    const runs = Object.values(sm.breakdown.kinds).map((k) => k.run.p50);
    const cpu = sm.cpuByRole ?? {};
    const total = Object.values(cpu).reduce((a, b) => a + b, 0);
    const jobsPerS = CONFIG.rate * r.n * 5;
    const other = r.perRegion
      ? undefined
      : [...byN.values()].find((x) => x.n === r.n && x.perRegion && x.small);
    const pr = other ? quantiles(other.small.results.map((x) => x.all)) : undefined;
    const queueing = Math.max(...waits) > Math.max(...runs);
    const workerText = r.perRegion
      ? `the ${r.n} worker processes used ${f2(cpu.worker)} cores in all`
      : `the worker process used ${f2(cpu.worker)} cores${cpu.worker >= 0.8 ? ' — nearly all of the one core a single Node.js process can use' : ''}`;
    out.push(
      `Small images with ${r.title}: ${queueing ? 'the lag is queueing — ' : ''}a job waited ` +
        `${f3(Math.min(...waits))}–${f3(Math.max(...waits))} s (p50, by kind) to be picked up and then ran ` +
        `${f3(Math.min(...runs))}–${f3(Math.max(...runs))} s. ${CONFIG.rate} images/s × ${r.n} region${r.n > 1 ? 's' : ''} × 5 jobs ` +
        `(3 blobs, the manifest, the tag) is ${jobsPerS} jobs/s; ${workerText}, and the cluster with the ` +
        `client ${f2(total)} of the machine's ${cpus().length} cores; the median lag went from ${f3(sm.trend.first)} s ` +
        `(first tenth of the images) to ${f3(sm.trend.last)} s (last tenth).` +
        (pr
          ? ` With one worker process per region the same load's p99 is ${f3(pr.p99)} s (${pr.p99 < TARGETS.smallP99 ? 'met' : 'missed'}).`
          : ''),
    );
  }
  return out.join('\n\n');
}

function renderDoc({
  started,
  machine,
  raw,
  rawEnd,
  byN,
  watcher,
  noise,
  errors,
  verdicts,
  tables,
}) {
  const rawLine = (r) =>
    `\`fs.copyFile\`+fsync ${r.copyFile.map(f1).join(', ')} MB/s; \`cp\` (page cache, no fsync) ${r.cp.map(f1).join(', ')} MB/s; ` +
    `Node read → sha256 → write + fsync ${r.verified.map(f1).join(', ')} MB/s; ` +
    Object.entries(r.parallel)
      .filter(([k]) => k !== '1')
      .map(([k, v]) => `${k} × copyFile+fsync at once ${v.map(f1).join(', ')} MB/s in all`)
      .join('; ');
  return `# Benchmarks: replication

<!-- Generated by \`pnpm bench:replication\` (bench/replication.mjs). Do not edit: rerun to refresh. -->

Generated ${started.toISOString().replace(/\.\d+Z$/, 'Z')} at commit ${machine.commit}; the run took
${Math.round((Date.now() - started.getTime()) / 1000)} s. Filesystem storage, loopback, one worker
process for all replica regions at ${CONCURRENCY ?? 'the default'} jobs per region.

> **${machine.cores} cores shared by everything:** the client, the primary, every replica node,
> Redis and the worker run on the same cores (and other work on this machine ran meanwhile: see
> the CPU noise below), so the lags include CPU contention a real deployment would not have.

## Lag: manifest PUT on the primary → pullable from every replica

Seconds from the primary answering the manifest \`PUT\` to the image being complete in **every**
replica's own storage (tag → manifest, revision link, every blob at full size, every layer link),
as a client polling each replica's storage directory every ${POLL_MS} ms sees it. Replica \`HEAD\`s
are not used: a replica answers a miss from the primary, so a \`HEAD\` succeeds before replication.
"by storage mtime" is the same with the region's tag file's mtime instead of the poll time (no
poll interval); "per region" counts each (image, region) pair on its own.

${tables.lag}

## Copy throughput: ${CONFIG.large / MiB} MiB layer

The layer is pushed (POST, one streamed PATCH, PUT), then its manifest. "Copy step": bytes ÷ the
worker's \`meridian_replication_copy_duration_seconds\` for the run. "Commit → visible": ${CONFIG.large / MiB} MiB ÷
(time the blob file is complete in the region − the upload's PUT answered), as the client sees it.
"All regions together": N × ${CONFIG.large / MiB} MiB ÷ (the last region complete − upload committed).
The raw figure is the same work without Meridian — a fresh ${CONFIG.large / MiB} MiB file written and fsynced (as
the upload is), then N \`fs.copyFile\`+fsync copies of it at once on the same disk, timed — measured
just before and just after each of the ${CONFIG.largeRuns} runs, each timed copy (raw or replicated) after a
${REST_MS / 1000} s rest, because this virtual disk's speed swings several-fold within seconds (fast after a rest,
slower after a couple of GB in a row) (in this run the raw copies around the
runs ranged from ${f1(tables.rawRange[0])} to ${f1(tables.rawRange[1])} MB/s, while other processes wrote next to
nothing to the disk). Each run is therefore compared with the mean of the raw copies made just
before and just after it, and the target is checked on the median of these per-run ratios; the
best-against-best and median-against-median ratios of all runs are shown too. The last column is
what other processes wrote to the disk while the copies ran (device writes − the worker's).

${tables.copy}

Raw copy speed of this disk, at the start and the end of the bench (${CONFIG.large / MiB} MiB file, each run):

- at the start: ${rawLine(raw)}
- at the end: ${rawLine(rawEnd)}

Baseline for one copy: ${f1(tables.baseline)} MB/s (best \`fs.copyFile\`+fsync). "server-side" on
filesystem storage means the worker's fs driver copies the primary's file with \`fs.copyFile\` to
a temp file, fsync, rename (\`FsStore.copyFrom\`): the same work as the raw copy, and no digest
check (it trusts the primary's file). A digest-verified streamed copy (what other store pairs
use) would top out at the Node read → sha256 → write figure.

## Cost: regions × unique bytes

${tables.cost}

Bytes copied per region stay at the unique bytes (the ${CONFIG.baseSize / MiB} MiB base once, plus each image's
config, small layer and manifest), whatever the number of regions, so the total grows as
regions × unique bytes. Worker CPU per region is the worker process's CPU time ÷ regions.

## Targets

${verdicts.map((v) => `- ${v}`).join('\n')}
${tables.why ? `\n${tables.why}\n` : ''}
## Details

Where the time goes (BullMQ's job records, last ≤ 200 completed jobs per region): commit → queued
(enqueue), queued → picked up by a worker, and the job's run time, seconds, per job kind.

${breakdownText(byN)}

Checks:

${checksText(byN, watcher)}

CPU noise: share of both cores used by other processes (not this bench or its cluster) while each
part ran: ${Object.entries(noise)
    .map(([k, v]) => `${k} ${Math.round(v * 100)} %`)
    .join(', ')}.
${errors.length ? `\nErrors during the run:\n\n${errors.map((e) => `- ${e}`).join('\n')}\n` : ''}
${LOAD_SECTION}

## Machine

- CPU: ${machine.cores} × ${machine.cpu}; ${machine.memGiB} GiB RAM; ${machine.os}, Linux ${machine.kernel}
- Node.js ${machine.node}; load average at the start ${machine.loadavg}

## How it is measured

- For each replica count a fresh cluster on fresh temp directories: \`redis-server\` (no
  persistence), \`meridian serve --config cluster.json --region R\` for the primary (eastus) and
  each replica (${REPLICA_NAMES.join(', ')}, in that order), and one \`meridian worker --config cluster.json\`
  for all replica regions, log level \`warn\`, \`auth.enabled: false\` (the bench's client sends no
  credentials; replication does not go through auth). The worker's \`/metrics\` gives bytes copied and copy time.
  The rows "a worker per region" repeat the small images with one \`meridian worker --region R\`
  process per replica region instead.
- Small images: one warm-up image, then ${CONFIG.small} images (config + 2 × 4 KiB layers), each its own
  repository, one started every ${1000 / CONFIG.rate} ms (blobs in parallel, then the manifest), each
  watched from its manifest \`PUT\` on.
- Shared base: ${CONFIG.shared} images, a repository each, of the same ${CONFIG.baseSize / MiB} MiB base (mounted from the
  first repository, as docker/containerd do) plus a 4 KiB layer, pushed back to back.
- After each scenario the bench waits for every region's queue to drain, checks each image with
  \`GET /meridian/v1/replication/status\` and pulls one image from each replica, checking the
  replica's \`meridian_replica_fallbacks_total\` did not move (a move, or a node without the
  counter, fails the run).
- Quantiles are nearest-rank over the images (p99 of 100 is the 99th slowest; of ${CONFIG.largeRuns} runs, the max).

## Reproduce

\`\`\`sh
apt-get install redis-server
pnpm install --frozen-lockfile && pnpm build
pnpm bench:replication                        # a few minutes; rewrites this file
node bench/replication.mjs --quick            # smoke test, smaller sizes, writes nothing
node bench/replication.mjs --replicas=4 --concurrency=8 --no-write
\`\`\`
`;
}

/** The doc as `prettier --write` would leave it (the repository's lint checks docs/), if it can. */
async function prettierFormat(text, file) {
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(join(REPO_ROOT, 'docs', 'x.md'))) ?? {};
    return await prettier.format(text, { ...options, filepath: file });
  } catch (err) {
    log(
      `prettier unavailable (${err instanceof Error ? err.message : String(err)}); writing as is`,
    );
    return text;
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (!existsSync(MERIDIAN_CLI)) throw new Error(`${MERIDIAN_CLI} missing: run pnpm build`);
  await run('redis-server', ['--version']).catch(() => {
    throw new Error('redis-server is not installed (Debian package: redis-server)');
  });
  const started = new Date();
  const machine = machineInfo();
  const noise = {};
  const errors = [];
  const watcher = new Watcher();

  const measure = async (name, pids, fn) => {
    const w = cpuWatch(pids);
    try {
      return await fn();
    } finally {
      const other = w.stop();
      noise[name] = Math.max(noise[name] ?? 0, other);
      if (other > 0.1)
        log(`  other processes used ${Math.round(other * 100)} % of the CPU meanwhile`);
    }
  };

  await waitForQuiet({ log, maxWaitMs: 30_000 });
  log(`raw copy speed of the disk (${CONFIG.large / MiB} MiB)`);
  const raw = await measure('raw copy', [], () =>
    rawCopySpeeds(CONFIG.large, CONFIG.rawRuns, CONFIG.replicas),
  );
  log(
    `  copyFile+fsync ${raw.copyFile.map(f1).join(', ')} MB/s; verified stream ${raw.verified.map(f1).join(', ')} MB/s`,
  );

  let largeBlobs = [];
  let largeRaw;
  if (only.includes('large')) {
    log(`hashing ${CONFIG.largeRuns} × ${CONFIG.large / MiB} MiB layers`);
    largeBlobs = Array.from({ length: CONFIG.largeRuns }, (_, i) =>
      streamBlob(`replication-large-${i}`, CONFIG.large),
    );
    largeRaw = await rawSource('raw-interleaved', CONFIG.large);
  }

  const byN = new Map();
  // Each replica count with one worker process for all regions; then, at the largest count, the
  // small images again with one worker process per region (the way to use more than one core).
  const variants = CONFIG.replicas.map((n) => ({ n, perRegion: PER_REGION, only }));
  const maxN = Math.max(...CONFIG.replicas);
  if (!PER_REGION && !flags.replicas && only.includes('small') && maxN > 1)
    variants.push({ n: maxN, perRegion: true, only: ['small'] });
  for (const { n, perRegion, only: parts } of variants) {
    await waitForQuiet({ log, maxWaitMs: 30_000 });
    const res = {
      n,
      perRegion,
      name: perRegion ? `${n}, a worker per region` : `${n}`,
      title: `${n} replica${n > 1 ? 's' : ''}${perRegion ? ' (a worker process per region)' : ''}`,
    };
    log(`${res.title}: starting the cluster`);
    const cluster = await startCluster(n, perRegion);
    byN.set(res.name, res);
    try {
      const step = async (name, fn) => {
        if (!parts.includes(name)) return;
        log(`  ${name}`);
        try {
          await measure(`${name} ×${res.name}`, cluster.pids, fn);
        } catch (err) {
          errors.push(`${name}, ${res.title}: ${err instanceof Error ? err.message : String(err)}`);
          log(`  FAILED: ${errors.at(-1)}`);
        }
      };
      await step('small', async () => {
        const cpu0 = workersCpu(cluster);
        const roles = {
          worker: cluster.workers.map((w) => w.pid),
          redis: [cluster.redis.pid],
          primary: [cluster.primary.pid],
          replicas: cluster.replicas.map((r) => r.pid),
          bench: [process.pid],
        };
        const cpuOf = () =>
          Object.fromEntries(
            Object.entries(roles).map(([k, pids]) => [
              k,
              pids.reduce((a, pid) => a + cpuSeconds(pid), 0),
            ]),
          );
        const roles0 = cpuOf();
        const calls0 = await redisCalls(cluster.redis.client);
        let monitor;
        const sent = {};
        if (flags['redis-monitor']) {
          monitor = await cluster.redis.client.duplicate().monitor();
          monitor.on('monitor', (_t, args, source) => {
            if (source === 'lua') return;
            const cmd = String(args[0]).toLowerCase();
            sent[cmd] = (sent[cmd] ?? 0) + 1;
          });
        }
        const wall0 = now();
        res.small = await smallImages(cluster, watcher, { count: CONFIG.small, rate: CONFIG.rate });
        res.small.workerCpu = workersCpu(cluster) - cpu0;
        const roles1 = cpuOf();
        const wall = (now() - wall0) / 1000;
        const calls1 = await redisCalls(cluster.redis.client);
        const per = CONFIG.small * n;
        if (monitor) {
          monitor.disconnect();
          const top = Object.entries(sent).sort((a, b) => b[1] - a[1]);
          const total = top.reduce((a, [, v]) => a + v, 0);
          res.small.redisSent = { total: total / per, top: top.map(([k, v]) => [k, v / per]) };
          log(
            `    commands sent to Redis per image per region ${f1(total / per)}: ${top
              .slice(0, 12)
              .map(([k, v]) => `${k} ${f1(v / per)}`)
              .join(', ')}`,
          );
        }
        res.small.redisPerImageRegion = Object.fromEntries(
          Object.entries(calls1)
            .map(([k, v]) => [k, (v - (calls0[k] ?? 0)) / per])
            .filter(([, v]) => v >= 0.05)
            .sort((a, b) => b[1] - a[1]),
        );
        res.small.redisTotalPerImageRegion = Object.values(res.small.redisPerImageRegion).reduce(
          (a, b) => a + b,
          0,
        );
        const lags = res.small.results.map((x) => x.all);
        const tenth = Math.max(1, Math.floor(lags.length / 10));
        res.small.trend = {
          first: quantiles(lags.slice(0, tenth)).p50,
          last: quantiles(lags.slice(-tenth)).p50,
        };
        log(
          `    Redis commands per image per region ${f1(res.small.redisTotalPerImageRegion)} (${Object.entries(
            res.small.redisPerImageRegion,
          )
            .slice(0, 8)
            .map(([k, v]) => `${k} ${f1(v)}`)
            .join(
              ', ',
            )}); lag p50 of the first tenth ${f3(res.small.trend.first)} s, last tenth ${f3(res.small.trend.last)} s`,
        );
        res.small.cpuByRole = Object.fromEntries(
          Object.keys(roles).map((k) => [k, (roles1[k] - roles0[k]) / wall]),
        );
        log(
          `    CPU (cores) ${Object.entries(res.small.cpuByRole)
            .map(([k, v]) => `${k} ${f2(v)}`)
            .join(', ')} over ${f1(wall)} s`,
        );
        res.small.breakdown = await jobBreakdown(cluster, res.small.since);
        res.small.status = await statusCheck(cluster, res.small.results);
        res.small.pull = await pullCheck(cluster, res.small.sample);
        const q = quantiles(res.small.results.map((x) => x.all));
        log(`    lag p50 ${f3(q.p50)} s, p99 ${f3(q.p99)} s`);
      });
      await step('shared', async () => {
        res.shared = await sharedBase(cluster, watcher, {
          count: CONFIG.shared,
          baseSize: CONFIG.baseSize,
        });
        res.shared.breakdown = await jobBreakdown(cluster, res.shared.since);
        res.shared.status = await statusCheck(cluster, res.shared.results);
        res.shared.pull = await pullCheck(cluster, res.shared.sample);
        const q = quantiles(res.shared.results.map((x) => x.all));
        log(
          `    lag p50 ${f3(q.p50)} s, p99 ${f3(q.p99)} s; MB copied per region ${res.shared.perRegion.map((p) => mb(p.bytesCopied)).join(', ')} (unique ${mb(res.shared.uniqueBytes)})`,
        );
      });
      await step('large', async () => {
        res.large = await largeLayer(cluster, watcher, { blobs: largeBlobs, raw: largeRaw });
        for (const r of res.large.runs)
          log(
            `    lag ${f3(r.lag.all)} s; per region ${r.perRegion.map((p) => `${p.region} copy ${f1(p.copyMBps)} / e2e ${f1(p.e2eMBps)} MB/s`).join(', ')}; all ${f1(r.aggregateMBps)} MB/s; ` +
              `raw ${f1(r.rawBefore)} / ${f1(r.rawAfter)} MB/s → ${Math.round(r.ratio * 100)} %; ` +
              `disk writes ${mb(r.diskWritten)} MB, by the worker ${mb(r.workerWritten)} MB`,
          );
      });
    } finally {
      await cluster.stop();
    }
  }

  await waitForQuiet({ log, maxWaitMs: 30_000 });
  log('raw copy speed again');
  const rawEnd = await measure('raw copy', [], () =>
    rawCopySpeeds(CONFIG.large, CONFIG.rawRuns, CONFIG.replicas),
  );
  // The stricter baseline: the best raw figure of the run.
  const merged = {
    copyFile: [...raw.copyFile, ...rawEnd.copyFile],
    parallel: Object.fromEntries(
      Object.keys(raw.parallel).map((k) => [k, [...raw.parallel[k], ...rawEnd.parallel[k]]]),
    ),
  };

  const lag = lagRows(byN);
  const copy = copyRows(byN, merged);
  const cost = costRows(byN);
  const verdicts = [];
  for (const r of byN.values()) {
    const n = r.n;
    if (r.small) {
      const q = quantiles(r.small.results.map((x) => x.all));
      verdicts.push(
        `Small images p99 < ${TARGETS.smallP99} s, ${r.title}: ${f3(q.p99)} s — ${q.p99 < TARGETS.smallP99 ? 'met' : '**MISSED**'}`,
      );
    }
  }
  for (const r of byN.values()) {
    const n = r.n;
    if (!r.large) continue;
    const c = copyFigures(r);
    verdicts.push(
      `${CONFIG.large / MiB} MiB layer at ≥ ${TARGETS.copyRatio * 100} % of raw copy throughput, ${r.title}: median of per-run ratios ${f1(c.pairedMedian * 100)} % (runs ${c.paired.map((x) => Math.round(x * 100)).join(', ')} %; best ${f1(c.bestAgg)} of best ${f1(c.bestRaw)} MB/s = ${f1(c.ratio * 100)} %, medians ${f1(c.medAgg)} of ${f1(c.medRaw)} = ${f1(c.medRatio * 100)} %) — ${c.pairedMedian >= TARGETS.copyRatio ? 'met' : '**MISSED**'}`,
    );
  }
  const linear = [...byN].filter(([, r]) => r.shared);
  if (linear.length) {
    const ok = linear.every(([, r]) =>
      r.shared.perRegion.every(
        (p) => Math.abs(p.bytesCopied - r.shared.uniqueBytes) <= 0.01 * r.shared.uniqueBytes,
      ),
    );
    verdicts.push(
      `Cost linear in regions × unique bytes (shared base copied once per region): ${ok ? 'met' : '**MISSED**'} — bytes copied per region ${linear.map(([, r]) => `${r.name}: ${r.shared.perRegion.map((p) => mb(p.bytesCopied)).join('/')}`).join('; ')} MB, unique ${mb(linear[0][1].shared.uniqueBytes)} MB`,
    );
  }
  const rawAround = [...byN.values()].flatMap((r) =>
    (r.large?.runs ?? []).flatMap((x) => [x.rawBefore, x.rawAfter]),
  );
  const tables = {
    lag,
    copy: copy.text,
    cost,
    baseline: copy.baseline,
    rawRange: [Math.min(...rawAround), Math.max(...rawAround)],
    why: whySmall(byN),
  };
  process.stdout.write(
    `\n${lag}\n\n${copy.text}\n\n${cost}\n\n${verdicts.join('\n')}\n\n${breakdownText(byN)}\n\n${checksText(byN, watcher)}\n`,
  );
  if (errors.length) process.stdout.write(`\nErrors:\n${errors.map((e) => `- ${e}`).join('\n')}\n`);
  if (write || flags.out) {
    const doc = renderDoc({
      started,
      machine,
      raw,
      rawEnd,
      byN,
      watcher,
      noise,
      errors,
      verdicts,
      tables,
    });
    const file = flags.out ?? join(REPO_ROOT, 'docs', 'benchmarks-replication.md');
    writeFileSync(file, await prettierFormat(doc, file));
    log(`wrote ${file}`);
  }
  return errors.length || watcher.orderViolations ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(
    `[bench:replication] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
} finally {
  await Promise.all([...children.keys()].map((pid) => stopChild(pid)));
  await cleanup();
}
process.exit(code);
