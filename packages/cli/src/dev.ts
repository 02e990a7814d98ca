import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { devOwnerPassword } from './auth-wiring';

export interface DevOptions {
  port: number;
  regions: string;
  data: string;
  storage?: string;
  redis?: string;
  latency?: string;
  logLevel: string;
}

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

/** What `<data>/pids.json` holds while the dev cluster runs (for scripts and tests). */
export interface DevPids {
  dev: number;
  redis?: number;
  regions: Record<string, number>;
  worker?: number;
  gateway?: number;
}

/** `s3://bucket/prefix?query` + region → `s3://bucket/prefix/region?query` */
function regionStorage(base: string, region: string): string {
  const q = base.indexOf('?');
  const path = (q >= 0 ? base.slice(0, q) : base).replace(/\/$/, '');
  return `${path}/${region}${q >= 0 ? base.slice(q) : ''}`;
}

async function waitHealthy(url: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become healthy at ${url}`);
}

/**
 * `meridian dev`: the whole topology on one machine with no Docker. Redis (spawned unless
 * `--redis`), one node per region, the workers and the gateway, as child processes of this one.
 * The gateway listens on 127.0.0.1, 127.0.0.2, … (one loopback address per region, same port):
 * the address a client connects to is its region. Ctrl-C stops them all; data stays in `--data`.
 */
export async function runDev(o: DevOptions): Promise<void> {
  const regions = o.regions
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (regions.length < 1 || regions.some((r) => !/^[a-z0-9-]+$/.test(r)))
    throw new Error('--regions: a comma-separated list of lower-case region names');
  const data = resolve(o.data);
  mkdirSync(data, { recursive: true });
  const ownerPassword = devOwnerPassword(data); // the nodes inherit it (MERIDIAN_OWNER_PASSWORD)
  const children: ChildProcess[] = [];
  const pidsFile = `${data}/pids.json`;
  const pids: DevPids = { dev: process.pid, regions: {} };
  const recordPid = (set: (p: DevPids) => void) => {
    set(pids);
    writeFileSync(pidsFile, JSON.stringify(pids, null, 2));
  };
  const stopAll = () => {
    rmSync(pidsFile, { force: true });
    for (const c of children.reverse())
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  process.once('SIGINT', () => {
    process.stdout.write('\nstopping Meridian dev cluster (data kept in ' + data + ')\n');
    stopAll();
    setTimeout(() => process.exit(0), 500).unref();
  });
  process.once('SIGTERM', stopAll);
  process.once('exit', stopAll);

  let redisUrl = o.redis;
  if (!redisUrl) {
    if (spawnSync('redis-server', ['--version']).status !== 0)
      throw new Error(
        'redis-server is not installed: install the Debian package "redis-server" (apt-get install redis-server), or pass --redis URL',
      );
    const redisPort = o.port + regions.length + 1;
    mkdirSync(`${data}/redis`, { recursive: true });
    const redis = spawn(
      'redis-server',
      [
        '--port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--dir',
        `${data}/redis`,
        '--appendonly',
        'yes',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    children.push(redis);
    recordPid((p) => (p.redis = redis.pid));
    redisUrl = `redis://127.0.0.1:${redisPort}`;
    await new Promise((r) => setTimeout(r, 300));
    if (redis.exitCode !== null)
      throw new Error(`redis-server exited (is port ${redisPort} free?)`);
  }

  const latency = parseLatency(o.latency, regions);
  const workerMetrics = `127.0.0.1:${o.port + regions.length + 2}`;
  const cluster = {
    redis: redisUrl,
    regions: regions.map((name, i) => ({
      name,
      role: i === 0 ? 'primary' : 'replica',
      endpoint: `http://127.0.0.1:${o.port + 1 + i}`,
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
    replication: { reconcileIntervalSeconds: 30 },
    log: { level: o.logLevel },
  };
  const configFile = `${data}/cluster.json`;
  writeFileSync(configFile, JSON.stringify(cluster, null, 2));

  const cli = process.argv[1]!;
  const run = (args: string[]) => {
    const child = spawn(process.execPath, [cli, ...args, '--config', configFile], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(child);
    return child;
  };
  for (const r of cluster.regions) {
    const child = run(['serve', '--region', r.name]);
    recordPid((p) => (p.regions[r.name] = child.pid!));
    await waitHealthy(r.endpoint, child, `region ${r.name}`);
  }
  const worker = run(['worker']);
  recordPid((p) => (p.worker = worker.pid));
  const gw = run(['gateway']);
  recordPid((p) => (p.gateway = gw.pid));
  await waitHealthy(`http://127.0.0.1:${o.port}`, gw, 'gateway');

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
      (r) => `  ${r.role.padEnd(7)} ${r.name.padEnd(14)} ${r.endpoint}   storage ${r.storage}`,
    ),
    `  redis                  ${redisUrl}`,
    `  worker metrics         http://${workerMetrics}/metrics`,
    `  processes              ${pidsFile}`,
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
