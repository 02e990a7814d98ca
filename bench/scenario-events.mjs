// 8. Domain events off the request path (issue 11, ADR 0010): manifest PUT latency on a primary
// whose replication subscriber needs Redis, with Redis answering, with Redis paused by
// `DEBUG SLEEP`, and on an in-process node with a subscriber that never answers.
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RegistryClient } from './lib/client.mjs';
import { smallImage } from './lib/content.mjs';
import { freePort, MERIDIAN_ROOT, startServer, tempDir } from './lib/procs.mjs';

const run = promisify(execFile);
const dist = (pkg) => join(MERIDIAN_ROOT, 'packages', pkg, 'dist', 'index.js');

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const summary = (ms) => ({ n: ms.length, p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99) });

async function startRedis(dir) {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
      // DEBUG SLEEP is refused unless the debug command is enabled (Redis ≥ 7).
      .concat(['--enable-debug-command', 'local', '--dir', dir]),
    { stdio: 'ignore' },
  );
  for (let i = 0; ; i++) {
    try {
      if ((await run('redis-cli', ['-p', String(port), 'ping'])).stdout.trim() === 'PONG') break;
    } catch {
      // not up yet
    }
    if (i > 100) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  // Spawned here, not by procs.mjs, so stopPid (which stops only what procs.mjs started) would
  // leave it running: stopped by its own handle.
  const exited = new Promise((r) => child.once('exit', r));
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Pushes images one at a time, timing only each manifest PUT, while `keep()` says so. */
async function manifestPuts(client, repo, count, keep = () => true) {
  const ms = [];
  for (let i = 0; ms.length < count; i++) {
    const img = smallImage(1, 1024);
    await Promise.all([img.config, ...img.layers].map((b) => client.pushBlob(repo, b)));
    const t0 = performance.now();
    await client.putManifest(repo, `t${i}`, img.manifest);
    const took = performance.now() - t0;
    if (keep()) ms.push(took);
  }
  return ms;
}

/** A primary (built CLI, own process) with one replica region and Redis: replication attached. */
async function primaryWithRedis(redis) {
  const dir = tempDir('meridian-events');
  const [port, replicaPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'node.json');
  writeFileSync(
    config,
    JSON.stringify({
      regions: [
        { name: 'eastus', role: 'primary', endpoint: url, storage: join(dir, 'east') },
        {
          name: 'westeurope',
          role: 'replica',
          endpoint: `http://127.0.0.1:${replicaPort}`,
          storage: join(dir, 'west'),
        },
      ],
      redis: redis.url,
      replication: { prefix: 'bench-events' },
      auth: { enabled: false },
      log: { level: 'warn' },
    }),
  );
  const cli = join(MERIDIAN_ROOT, 'packages/cli/dist/main.js');
  return startServer({
    name: 'meridian-events',
    cmd: process.execPath,
    args: [cli, 'serve', '--config', config, '--region', 'eastus'],
    env: process.env,
    port,
    dir,
  });
}

/** An in-process node (fs storage, a journal) whose events go to a subscriber that never answers. */
async function nodeWithHangingSubscriber() {
  const { Registry, RegistryEvents, startNodeServer } = await import(dist('registry'));
  const { openStore } = await import(dist('storage'));
  const { default: pino } = await import('pino');
  const dir = tempDir('meridian-events-hang');
  const store = await openStore(join(dir, 'store'));
  const events = await RegistryEvents.open(join(dir, 'events'), { region: 'local' });
  const registry = new Registry({ store, events });
  const node = await startNodeServer({
    registry,
    log: pino({ level: 'silent' }),
    region: 'local',
    listen: '127.0.0.1:0',
  });
  return {
    url: node.url,
    hang: () => events.attach({ name: 'hangs', deliver: () => new Promise(() => {}) }),
    stop: async () => {
      await node.close();
      await events.close();
      await store.close();
    },
  };
}

export async function eventLatency(_target, { count, sleepSeconds = 5 }) {
  const redis = await startRedis(tempDir('redis-events'));
  let primary;
  let hanging;
  try {
    primary = await primaryWithRedis(redis);
    const client = new RegistryClient(primary.url);
    await manifestPuts(client, 'events/warmup', 5);
    const normal = await manifestPuts(client, 'events/normal', count);

    // Pushes while Redis sleeps; only PUTs that finished during a sleep count.
    let asleep = false;
    let sleeping = Promise.resolve();
    const sleep = () => {
      asleep = true;
      sleeping = run('redis-cli', [
        '-p',
        String(redis.port),
        'DEBUG',
        'SLEEP',
        String(sleepSeconds),
      ])
        .catch(() => {})
        .then(() => {
          asleep = false;
        });
    };
    sleep();
    await new Promise((r) => setTimeout(r, 100));
    const paused = await manifestPuts(client, 'events/paused', count, () => {
      const counted = asleep;
      if (!asleep) sleep();
      return counted;
    });
    await sleeping;
    client.close();

    hanging = await nodeWithHangingSubscriber();
    const local = new RegistryClient(hanging.url);
    await manifestPuts(local, 'events/warmup', 5);
    const inProcess = await manifestPuts(local, 'events/in-process', count);
    await hanging.hang();
    const hung = await manifestPuts(local, 'events/hanging', count);
    local.close();
    const out = {
      normal: summary(normal),
      redisPaused: summary(paused),
      inProcess: summary(inProcess),
      hangingSubscriber: summary(hung),
    };
    out.pausedP50Ratio = out.redisPaused.p50Ms / out.normal.p50Ms;
    out.hangingP50Ratio = out.hangingSubscriber.p50Ms / out.inProcess.p50Ms;
    return out;
  } finally {
    await hanging?.stop();
    await primary?.stop();
    await redis.stop();
  }
}
