import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createRedis, describeRedis } from '@meridian/redis';
import { ProcessRestarts, type ProcessRestart } from '@meridian/replication';
import { devOwnerPassword } from './auth-wiring';
import {
  canBind,
  DevProcesses,
  stopLeftovers,
  waitHealthy,
  type DevChildSpec,
  type DevPids,
} from './dev-processes';
import { nodeOptionsFor } from './node-options';

export interface DevOptions {
  port: number;
  regions: string;
  data: string;
  storage?: string;
  redis?: string;
  latency?: string;
  logLevel: string;
  /** `serve` nodes per region, on consecutive ports. Default 1. */
  nodesPerRegion?: number;
}

/** The dev cluster's Redis key prefix (`replication.prefix`). */
const PREFIX = 'meridian';

/** One-way latencies (ms) between the default regions: round trips of 80–150 ms. */
const DEFAULT_LATENCY: Record<string, number> = {
  'eastus-westeurope': 40,
  'eastus-southeastasia': 75,
  'westeurope-southeastasia': 65,
};

export function parseLatency(spec: string | undefined, regions: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [i, a] of regions.entries())
    for (const b of regions.slice(i + 1))
      out[`${a}-${b}`] = DEFAULT_LATENCY[`${a}-${b}`] ?? DEFAULT_LATENCY[`${b}-${a}`] ?? 50;
  for (const pair of (spec ?? '').split(',').filter(Boolean)) {
    const [names, value] = pair.trim().split('=');
    const ms = Number(value);
    // Region names may contain '-': find the split that names two configured regions.
    const match = regions.flatMap((a) =>
      regions.filter((b) => b !== a && `${a}-${b}` === names).map((b) => [a, b]),
    );
    if (match.length === 0 || !Number.isInteger(ms) || ms < 0)
      throw new Error(
        `--latency: cannot read "${pair}" (expected REGION-REGION=MS with configured regions)`,
      );
    const [a, b] = match[0]!;
    delete out[`${b}-${a}`];
    out[`${a}-${b}`] = ms;
  }
  return out;
}

/**
 * Per home region, the read order the dev gateway uses: home first, then the others by simulated
 * latency from home (on one machine the gateway's own latency measurements are all ~1 ms and would
 * not say which region is "next").
 */
export function preferenceFromLatency(
  regions: string[],
  latency: Record<string, number>,
): Record<string, string[]> {
  const between = (a: string, b: string) => latency[`${a}-${b}`] ?? latency[`${b}-${a}`] ?? 0;
  return Object.fromEntries(
    regions.map((home) => [
      home,
      [
        home,
        ...regions.filter((r) => r !== home).sort((a, b) => between(home, a) - between(home, b)),
      ],
    ]),
  );
}

export type { DevPids } from './dev-processes';

/** `s3://bucket/prefix?query` + region → `s3://bucket/prefix/region?query` */
function regionStorage(base: string, region: string): string {
  const q = base.indexOf('?');
  const path = (q >= 0 ? base.slice(0, q) : base).replace(/\/$/, '');
  return `${path}/${region}${q >= 0 ? base.slice(q) : ''}`;
}

/**
 * The ports `meridian dev` uses, from `--port`: the gateway on `port` (on 127.0.0.1, .2, … one
 * address per region), then each region's nodes in turn, then Redis (unless `--redis`), then the
 * worker's metrics.
 */
export function devPorts(port: number, regions: number, nodesPerRegion: number) {
  const nodes = regions * nodesPerRegion;
  return {
    gateway: port,
    node: (region: number, node: number) => port + 1 + region * nodesPerRegion + node,
    redis: port + nodes + 1,
    workerMetrics: port + nodes + 2,
    last: port + nodes + 2,
  };
}

/** Checks `--port` and `--nodes-per-region`, with messages that name the flag. */
export function checkDevNumbers(port: number, regions: number, nodesPerRegion: number): void {
  if (!Number.isInteger(nodesPerRegion) || nodesPerRegion < 1 || nodesPerRegion > 16)
    throw new Error('--nodes-per-region: a whole number from 1 to 16');
  const span = devPorts(0, regions, nodesPerRegion).last;
  if (!Number.isInteger(port) || port < 1 || port + span > 65_535)
    throw new Error(
      `--port: a whole number from 1 to ${65_535 - span} (the gateway's port; the ${span} ports after it are used too)`,
    );
}

/** Fails in one line when `--redis` does not answer a PING. */
async function checkRedis(url: string): Promise<void> {
  const client = createRedis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let cause: Error | undefined; // the socket's error says more than the rejection
  client.on('error', (err: Error) => (cause ??= err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new Error(
      `--redis ${describeRedis(url)}: Redis does not answer (${(cause ?? (err as Error)).message})`,
    );
  } finally {
    client.disconnect();
  }
}

/**
 * `meridian dev`: the whole topology on one machine with no Docker. Redis (spawned unless
 * `--redis`), `--nodes-per-region` nodes per region, the workers and the gateway, as child
 * processes of this one. The gateway listens on 127.0.0.1, 127.0.0.2, … (one loopback address per
 * region, same port): the address a client connects to is its region. A child that dies is
 * restarted with backoff; the children die with this process, even by `kill -9`; Ctrl-C stops
 * them all; data stays in `--data`.
 */
export async function runDev(o: DevOptions): Promise<void> {
  const regions = o.regions
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (regions.length < 1 || regions.some((r) => !/^[a-z0-9-]+$/.test(r)))
    throw new Error('--regions: a comma-separated list of lower-case region names');
  const perRegion = o.nodesPerRegion ?? 1;
  checkDevNumbers(o.port, regions.length, perRegion);
  const ports = devPorts(o.port, regions.length, perRegion);
  const data = resolve(o.data);
  mkdirSync(data, { recursive: true });
  const pidsFile = `${data}/pids.json`;
  const say = (line: string) => process.stderr.write(`meridian dev: ${line}\n`);
  for (const s of await stopLeftovers(pidsFile, data))
    say(`stopped ${s.what} (pid ${s.pid}), left running by an earlier meridian dev`);
  if (o.redis) await checkRedis(o.redis);
  const wanted: [string, number][] = [
    ...regions.map((_, i): [string, number] => [`127.0.0.${i + 1}`, ports.gateway]),
    ...regions.flatMap((_, r) =>
      Array.from({ length: perRegion }, (_, n): [string, number] => [
        '127.0.0.1',
        ports.node(r, n),
      ]),
    ),
    ...(o.redis ? [] : [['127.0.0.1', ports.redis] as [string, number]]),
    ['127.0.0.1', ports.workerMetrics],
  ];
  for (const [host, port] of wanted)
    if (!(await canBind(host, port)))
      throw new Error(
        `port ${host}:${port} is taken by another program (meridian dev uses ${o.port}–${ports.last}): choose another --port`,
      );
  const ownerPassword = devOwnerPassword(data); // the nodes inherit it (MERIDIAN_OWNER_PASSWORD)
  // Restarts go to the terminal, pids.json and (once Redis is up) Redis, for the dashboard.
  let recordRestart: (r: ProcessRestart) => void = () => {};
  // dev's own Redis client (restarts for the dashboard): closed when dev stops, or it would keep
  // dev alive, reconnecting to the redis-server dev just stopped.
  let closeRedis = (): void => {};
  const procs = new DevProcesses(pidsFile, say, (r) => recordRestart(r));
  procs.pids.dev = process.pid;
  const stop = (): void => {
    procs.stopAll();
    closeRedis();
  };
  process.once('SIGINT', () => {
    process.stdout.write('\nstopping Meridian dev cluster (data kept in ' + data + ')\n');
    stop();
    setTimeout(() => process.exit(0), 500).unref();
  });
  process.once('SIGTERM', stop);
  process.once('exit', () => procs.stopAll());

  let redisUrl = o.redis;
  if (!redisUrl) {
    if (spawnSync('redis-server', ['--version']).status !== 0)
      throw new Error(
        'redis-server is not installed: install the Debian package "redis-server" (apt-get install redis-server), or pass --redis URL',
      );
    mkdirSync(`${data}/redis`, { recursive: true });
    const redis = procs.start({
      label: 'redis-server',
      kind: 'redis',
      command: 'redis-server',
      args: [
        '--port',
        String(ports.redis),
        '--bind',
        '127.0.0.1',
        '--dir',
        `${data}/redis`,
        '--appendonly',
        'yes',
        '--save',
        '',
        // keep the command line (and --dir) readable in /proc, for the next start's check
        '--set-proc-title',
        'no',
      ],
      stdio: 'ignore',
      record: (p, pid) => (p.redis = pid),
    });
    redisUrl = `redis://127.0.0.1:${ports.redis}`;
    await new Promise((r) => setTimeout(r, 300));
    if (redis.exitCode !== null)
      throw new Error(`redis-server exited (is port ${ports.redis} free?)`);
  }

  const restartsRedis = createRedis(redisUrl);
  closeRedis = () => restartsRedis.disconnect();
  const restarts = new ProcessRestarts(restartsRedis, PREFIX);
  await restarts.clear().catch(() => undefined); // a new run: restarts of an earlier one are history
  recordRestart = (r) =>
    void restarts
      .record(r)
      .catch((err: Error) => say(`could not record the restart for the dashboard: ${err.message}`));

  const latency = parseLatency(o.latency, regions);
  const workerMetrics = `127.0.0.1:${ports.workerMetrics}`;
  const nodeUrls = regions.map((_, r) =>
    Array.from({ length: perRegion }, (_, n) => `http://127.0.0.1:${ports.node(r, n)}`),
  );
  const cluster = {
    redis: redisUrl,
    regions: regions.map((name, i) => ({
      name,
      role: i === 0 ? 'primary' : 'replica',
      // No load balancer in dev: the region's first node stands for it (a replica's fallback, status).
      endpoint: nodeUrls[i]![0]!,
      ...(perRegion > 1 ? { nodes: nodeUrls[i]! } : {}),
      storage: o.storage ? regionStorage(o.storage, name) : `${data}/${name}`,
    })),
    gateway: {
      listen: regions.map((_, i) => `127.0.0.${i + 1}:${o.port}`),
      clients: regions.map((name, i) => ({ cidr: `127.0.0.${i + 1}/32`, region: name })),
      matchOn: 'destination',
      preference: preferenceFromLatency(regions, latency),
    },
    worker: { metricsListen: workerMetrics },
    simulatedLatencyMs: latency,
    replication: { prefix: PREFIX, reconcileIntervalSeconds: 30 },
    log: { level: o.logLevel },
  };
  const configFile = `${data}/cluster.json`;
  writeFileSync(configFile, JSON.stringify(cluster, null, 2));

  const cli = process.argv[1]!;
  const node = (
    args: string[],
    who: Pick<DevChildSpec, 'label' | 'kind' | 'region'>,
    record: DevChildSpec['record'],
    healthUrl?: string,
    env?: Record<string, string>,
  ) =>
    procs.start({
      ...who,
      command: process.execPath,
      args: [cli, ...args, '--config', configFile],
      stdio: ['ignore', 'inherit', 'inherit'],
      healthUrl,
      record,
      env: { NODE_OPTIONS: nodeOptionsFor(process.env), ...env },
    });
  const startNode = (r: number, n: number): Promise<void> => {
    const region = cluster.regions[r]!.name;
    const url = nodeUrls[r]![n]!;
    const label = perRegion > 1 ? `region ${region} node ${n + 1}` : `region ${region}`;
    const child = node(
      ['serve', '--region', region, '--listen', new URL(url).host],
      { label, kind: 'node', region },
      (p, pid) => {
        (p.nodes[region] ??= [])[n] = pid;
        if (n === 0) p.regions[region] = pid;
      },
      url,
      // A node's event journal is its own state: the first node keeps the default place.
      n === 0
        ? undefined
        : { MERIDIAN_EVENTS_JOURNAL_DIR: `${data}/events/${region}-node${n + 1}` },
    );
    return waitHealthy(url, child, label);
  };
  // Each region's first node in turn (the primary first, as in a one-node-per-region cluster),
  // then every other node at once.
  for (const r of regions.keys()) await startNode(r, 0);
  await Promise.all(
    regions.flatMap((_, r) => Array.from({ length: perRegion - 1 }, (_, n) => startNode(r, n + 1))),
  );
  node(['worker'], { label: 'worker', kind: 'worker' }, (p, pid) => (p.worker = pid));
  const gatewayUrl = `http://127.0.0.1:${o.port}`;
  const gw = node(
    ['gateway'],
    { label: 'gateway', kind: 'gateway' },
    (p, pid) => (p.gateway = pid),
    gatewayUrl,
  );
  await waitHealthy(gatewayUrl, gw, 'gateway');
  procs.supervise();

  const lines = [
    '',
    'Meridian dev cluster is up.',
    '',
    `  gateway (global endpoint)   http://127.0.0.1:${o.port}`,
    ...regions.map(
      (name, i) => `    clients of ${name.padEnd(14)} connect to 127.0.0.${i + 1}:${o.port}`,
    ),
    '',
    ...cluster.regions.map(
      (r, i) =>
        `  ${r.role.padEnd(7)} ${r.name.padEnd(14)} ${nodeUrls[i]!.join(' ')}   storage ${r.storage}`,
    ),
    `  redis                  ${describeRedis(redisUrl)}${o.redis ? '' : ` (pid ${procs.pids.redis})`}`,
    `  worker metrics         http://${workerMetrics}/metrics`,
    `  processes              ${pidsFile}: ${processSummary(procs.pids)}`,
    '  a process that dies is reported here (and on the dashboard) and restarted; they all stop with this one',
    '',
    `  dashboard               http://127.0.0.1:${o.port}/dashboard`,
    `  replication status      http://127.0.0.1:${o.port}/meridian/v1/replication/regions`,
    '',
    'Push through the gateway and pull from another region:',
    `  pnpm meridian sample-image ./sample-image`,
    `  skopeo copy --dest-tls-verify=false oci:./sample-image:v1 docker://127.0.0.1:${o.port}/demo/app:v1`,
    `  skopeo inspect --tls-verify=false docker://127.0.0.${Math.min(2, regions.length)}:${o.port}/demo/app:v1`,
    `  MERIDIAN_PASSWORD=${ownerPassword} pnpm meridian replication status --url http://127.0.0.1:${o.port} --repository demo/app --reference v1`,
    '',
    `Log in first (user owner, password ${ownerPassword}):`,
    ...regions.map(
      (_, i) =>
        `  skopeo login --tls-verify=false -u owner -p ${ownerPassword} 127.0.0.${i + 1}:${o.port}`,
    ),
    '',
    'Ctrl-C stops every process; the data stays for the next run.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
  await new Promise(() => {});
}

/** `dev 100, redis 101, eastus 102 103, …` for the banner. */
function processSummary(p: DevPids): string {
  return [
    `dev ${p.dev}`,
    ...(p.redis ? [`redis ${p.redis}`] : []),
    ...Object.entries(p.nodes).map(([r, pids]) => `${r} ${pids.join(' ')}`),
    `worker ${p.worker}`,
    `gateway ${p.gateway}`,
  ].join(', ');
}
