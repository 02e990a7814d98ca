// `pnpm bench:webhooks` (issue 14): webhook delivery on loopback, with a primary (built CLI, own
// process, fs storage), a redis-server and an in-process HTTP receiver.
//
//   node bench/webhooks.mjs [--quick] [--pushes=N] [--webhooks=K] [--delivery=node,workers] [--out=FILE]
//                           [--profile=DIR]   (V8 CPU profiles of the primary and worker, at exit)
//
// 1. Latency: one webhook, pushes one at a time; for each, the time from the manifest PUT's 201
//    to the receiver getting its `push` (p50, p99).
// 2. Throughput: K webhooks (default 10), a burst of N pushes (default 500) by 8 clients; the
//    deliveries per second until all N × K arrived, and the manifest PUT latency during the
//    burst against the same burst with no webhook (the ratio should stay ≤ 1.1).
// Each of `--delivery` (default both) runs on a fresh primary: `node` sends deliveries from the
// primary itself, `workers` from one `meridian worker` process (`webhooks.delivery: workers`).
// Prints the results as JSON; with --out, writes them there as a Markdown table too.
// Needs `pnpm build` and redis-server.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RegistryClient } from './lib/client.mjs';
import { smallImage } from './lib/content.mjs';
import { freePort, MERIDIAN_CLI, startServer, tempDir } from './lib/procs.mjs';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    pushes: { type: 'string' },
    webhooks: { type: 'string' },
    delivery: { type: 'string', default: 'node,workers' },
    out: { type: 'string' },
    // Writes a V8 CPU profile of the primary (and the worker) into this directory at exit.
    profile: { type: 'string' },
  },
});
const nodeArgs = flags.profile ? ['--cpu-prof', `--cpu-prof-dir=${flags.profile}`] : [];
const PUSHES = Number(flags.pushes ?? (flags.quick ? 40 : 500));
const HOOKS = Number(flags.webhooks ?? 10);
const LATENCY_PUSHES = flags.quick ? 30 : 200;

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 100) / 100;
};
const summary = (ms) => ({ n: ms.length, p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99) });

/**
 * Stops a child this file spawned itself (`stopPid` only knows `startServer`'s): SIGTERM, then
 * SIGKILL after 5 s. Without it the worker and redis-server outlived the bench, which never exited.
 */
async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux). */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (100/s)
  } catch {
    return NaN;
  }
}

/** Redis commands run so far, by command (`INFO commandstats`), via redis-cli. */
function redisCalls(url) {
  const port = new URL(url).port;
  const out = execFileSync('redis-cli', ['-p', port, 'INFO', 'commandstats'], { encoding: 'utf8' });
  const calls = {};
  for (const m of out.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  return calls;
}

/** Redis commands per delivery between two `redisCalls` snapshots, the busiest first. */
function callsPer(before, after, n) {
  const per = Object.entries(after)
    .map(([k, v]) => [k, (v - (before[k] ?? 0)) / n])
    .filter(([, v]) => v >= 0.05)
    .sort((a, b) => b[1] - a[1]);
  const total = per.reduce((t, [, v]) => t + v, 0);
  return {
    total: Math.round(total * 100) / 100,
    ...Object.fromEntries(per.map(([k, v]) => [k, Math.round(v * 100) / 100])),
  };
}

/** CPU ms each of `procs` ({name: pid}) used while `fn` ran. */
async function cpuDuring(procs, fn) {
  const before = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuMs(pid)]));
  const result = await fn();
  const used = Object.fromEntries(
    Object.entries(procs).map(([k, pid]) => [k, Math.round(cpuMs(pid) - before[k])]),
  );
  return { result, used };
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore', cwd: tempDir('redis-webhooks') },
  );
  await new Promise((r) => setTimeout(r, 300));
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid, stop: () => stopChild(child) };
}

/** Records when each (webhook, digest) push arrived. */
function startReceiver() {
  const arrivals = new Map();
  let count = 0;
  const waiters = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const hook = String(req.headers['webhook-id']).split('-')[0];
      if (body.action === 'push') arrivals.set(`${hook} ${body.target.digest}`, at);
      count++;
      for (const w of waiters.splice(0)) w();
      res.end();
    });
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () =>
      ok({
        url: `http://127.0.0.1:${server.address().port}/`,
        arrivals,
        get count() {
          return count;
        },
        /** Resolves once `pred()` holds (checked on each arrival). */
        async until(pred, timeoutMs = 600_000) {
          const deadline = Date.now() + timeoutMs;
          while (!pred()) {
            if (Date.now() > deadline) throw new Error('timed out waiting for deliveries');
            await new Promise((r) => {
              waiters.push(r);
              setTimeout(r, 200);
            });
          }
        },
        close: () => server.close(),
      }),
    ),
  );
}

async function startPrimary(redis, delivery) {
  const dir = tempDir(`meridian-webhooks-${delivery}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'node.json');
  writeFileSync(
    config,
    JSON.stringify({
      regions: [{ name: 'eastus', role: 'primary', endpoint: url, storage: join(dir, 'east') }],
      redis: redis.url,
      replication: { prefix: `bench${Math.random().toString(36).slice(2, 6)}` },
      auth: { enabled: false },
      webhooks: { allowPrivateTargets: ['loopback'], delivery },
      log: { level: 'warn' },
    }),
  );
  const node = await startServer({
    name: 'meridian-webhooks',
    cmd: process.execPath,
    args: [...nodeArgs, MERIDIAN_CLI, 'serve', '--config', config, '--region', 'eastus'],
    env: process.env,
    port,
    dir,
  });
  const worker =
    delivery === 'workers'
      ? spawn(process.execPath, [...nodeArgs, MERIDIAN_CLI, 'worker', '--config', config], {
          stdio: 'ignore',
        })
      : undefined;
  return {
    url: node.url,
    pids: { primary: node.pid, ...(worker && { worker: worker.pid }) },
    stop: async () => {
      if (worker) await stopChild(worker);
      await node.stop();
    },
  };
}

async function createHook(url, name, target) {
  const res = await fetch(`${url}/meridian/v1/admin/webhooks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, url: target }),
  });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${await res.text()}`);
}

/** Pushes the images by 8 concurrent clients; returns each manifest PUT's duration and its 201 time. */
async function burst(client, repo, images) {
  const puts = [];
  let next = 0;
  // Each client pushes to its own repository, as eight CI jobs would.
  const worker = async (_, w) => {
    const r = `${repo}-${w}`;
    while (next < images.length) {
      const i = next++;
      const img = images[i];
      await Promise.all([img.config, ...img.layers].map((b) => client.pushBlob(r, b)));
      const t0 = performance.now();
      await client.putManifest(r, `t${i}`, img.manifest);
      puts.push({ ms: performance.now() - t0, at: performance.now(), digest: img.manifest.digest });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return puts;
}

async function run(delivery) {
  const redis = await startRedis();
  const receiver = await startReceiver();
  let primary;
  try {
    primary = await startPrimary(redis, delivery);
    const client = new RegistryClient(primary.url);
    const images = (n) => Array.from({ length: n }, () => smallImage(1, 1024));

    // Baseline: the burst with no webhook.
    await burst(client, 'bench/warmup', images(20));
    const procs = { ...primary.pids, redis: redis.pid, bench: process.pid };
    const { result: baseline, used: cpuBaseline } = await cpuDuring(procs, () =>
      burst(client, 'bench/baseline', images(PUSHES)),
    );

    // 1. Latency, one webhook, one push at a time.
    await createHook(primary.url, 'solo', receiver.url);
    const latencies = [];
    for (const img of images(LATENCY_PUSHES)) {
      const [put] = await burst(client, 'bench/latency', [img]);
      await receiver.until(() => receiver.arrivals.has(`solo ${put.digest}`));
      latencies.push(receiver.arrivals.get(`solo ${put.digest}`) - put.at);
    }
    const res = await fetch(`${primary.url}/meridian/v1/admin/webhooks/solo`, { method: 'DELETE' });
    if (res.status !== 204) throw new Error(`delete solo: ${res.status}`);

    // 2. Throughput: K webhooks, a burst of N pushes.
    for (let k = 0; k < HOOKS; k++) await createHook(primary.url, `h${k}`, receiver.url);
    await new Promise((r) => setTimeout(r, 2500)); // past the definitions cache
    const before = receiver.count;
    const t0 = performance.now();
    const callsBefore = redisCalls(redis.url);
    const { result: withHooks, used: cpuWithHooks } = await cpuDuring(procs, async () => {
      const puts = await burst(client, 'bench/burst', images(PUSHES));
      await receiver.until(() => receiver.count - before >= PUSHES * HOOKS);
      return puts;
    });
    const seconds = (performance.now() - t0) / 1000;
    // Redis commands per delivery in the burst (the pushes' own commands included).
    const redisPerDelivery = callsPer(callsBefore, redisCalls(redis.url), PUSHES * HOOKS);
    client.close();

    const out = {
      delivery,
      latency: summary(latencies),
      burst: {
        pushes: PUSHES,
        webhooks: HOOKS,
        deliveries: PUSHES * HOOKS,
        seconds: Math.round(seconds * 100) / 100,
        deliveriesPerSecond: Math.round((PUSHES * HOOKS) / seconds),
        manifestPutNoWebhooks: summary(baseline.map((p) => p.ms)),
        manifestPutWithWebhooks: summary(withHooks.map((p) => p.ms)),
        // CPU the deliveries cost, whatever else loads the machine: the burst with webhooks
        // (until every delivery arrived) minus the burst without, per delivery, per process.
        cpuMs: { noWebhooks: cpuBaseline, withWebhooks: cpuWithHooks },
        redisCommandsPerDelivery: redisPerDelivery,
        cpuMsPerDelivery: Object.fromEntries(
          Object.keys(cpuBaseline).map((k) => [
            k,
            Math.round(((cpuWithHooks[k] - cpuBaseline[k]) / (PUSHES * HOOKS)) * 100) / 100,
          ]),
        ),
      },
      loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    };
    out.burst.putP50Ratio =
      Math.round(
        (out.burst.manifestPutWithWebhooks.p50Ms / out.burst.manifestPutNoWebhooks.p50Ms) * 100,
      ) / 100;
    return out;
  } finally {
    receiver.close();
    await primary?.stop();
    await redis.stop();
  }
}

const results = [];
for (const delivery of flags.delivery.split(',')) results.push(await run(delivery));
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
if (flags.out) {
  const rows = ['| delivery | measure | value |', '| --- | --- | --- |'];
  for (const out of results) {
    const b = out.burst;
    const d = out.delivery;
    rows.push(
      `| ${d} | delivery latency, 201 → receiver (p50 / p99, ${out.latency.n} pushes) | ${out.latency.p50Ms} ms / ${out.latency.p99Ms} ms |`,
      `| ${d} | burst: ${b.pushes} pushes × ${b.webhooks} webhooks | ${b.deliveries} deliveries in ${b.seconds} s (${b.deliveriesPerSecond}/s) |`,
      `| ${d} | manifest PUT p50 during the burst, without / with webhooks | ${b.manifestPutNoWebhooks.p50Ms} ms / ${b.manifestPutWithWebhooks.p50Ms} ms (×${b.putP50Ratio}) |`,
      `| ${d} | CPU per delivery (ms: ${Object.entries(b.cpuMsPerDelivery)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}) | load average ${out.loadAverage.join(' ')} |`,
      `| ${d} | Redis commands per delivery during the burst | ${b.redisCommandsPerDelivery.total} |`,
    );
  }
  writeFileSync(flags.out, `${rows.join('\n')}\n`);
}
