import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RunningNode } from '@meridian/registry';
import { loadConfig, NodeConfigSchema, type NodeConfig } from '../../packages/cli/src/config';
import { serve } from '../../packages/cli/src/serve';
import { runWorkers, type WorkerRun } from '../../packages/cli/src/worker';
import { newStorage, type StorageKind } from './node';
import { freePort } from './ports';
import { startRedis, type TestRedis } from './redis';
import { newTestBucket, testS3Location, testS3OtherName } from './s3-env';
import { noteSecret, testLogFile } from './log-scan';

export interface ClusterRegion {
  name: string;
  role: 'primary' | 'replica';
  url: string;
  host: string;
  storage: string;
}

export interface TestCluster {
  redis: TestRedis;
  regions: ClusterRegion[];
  primary: ClusterRegion;
  replicas: ClusterRegion[];
  config: NodeConfig;
  configFile: string;
  /** Starts in-process workers for all replicas (or the named ones). */
  startWorkers(regions?: string[]): Promise<WorkerRun>;
  stopWorkers(): Promise<void>;
  /** Spawns `meridian worker` as a child process (the built CLI), for kill tests. */
  spawnWorker(args?: string[]): ChildProcess;
  stopNode(name: string): Promise<void>;
  startNode(name: string): Promise<void>;
  close(): Promise<void>;
}

const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');

/**
 * A primary and replicas on one machine: a real redis-server, one node per region (in-process),
 * each region on its own storage (temp dirs, or one bucket each on the test S3).
 */
export async function startCluster(
  opts: {
    regions?: string[];
    storage?: StorageKind;
    reconcileIntervalSeconds?: number;
    /** Auth settings (`auth.*`); default off, as the suites that predate auth expect. */
    auth?: Record<string, unknown>;
    /** The owner's password when `auth` is on. */
    ownerPassword?: string;
    /**
     * S3 only: regions whose bucket is reached through another name for the same server
     * (`localhost` for `127.0.0.1`), as if on another S3 service. The worker cannot copy into
     * them server-side, so it streams the bytes through the digest check into staging (the
     * path a region on another provider takes). Default: none, every copy is server-side.
     */
    streamedRegions?: string[];
    /** `webhooks.*` settings (e.g. `allowPrivateTargets: ['loopback']` for a local receiver). */
    webhooks?: Record<string, unknown>;
    /** `gc.*` settings. Default: no schedule, and grace may be 0 (runs are asked for). */
    gc?: Record<string, unknown>;
    /** `softDelete.*` settings. Default off. */
    softDelete?: Record<string, unknown>;
    /** `upstream.*` settings (imports, credential sets, cache rules). */
    upstream?: Record<string, unknown>;
    /** `retention.*` settings (untagged policy, rules). Default off. */
    retention?: Record<string, unknown>;
    /** `usage.*` settings (e.g. a short `flushIntervalSeconds`). */
    usage?: Record<string, unknown>;
    /** `regions[].scope` by region name (ADR 0026). Default: every region replicates everything. */
    scopes?: Record<string, Record<string, unknown>>;
    /**
     * A Redis started by the caller (e.g. `startSentinelRedis()`), with the `redis` config that
     * reaches it when that is not its URL. Default: a fresh `redis-server`. `close()` stops it.
     */
    redis?: TestRedis & { connection?: unknown };
  } = {},
): Promise<TestCluster> {
  const names = opts.regions ?? ['eastus', 'westeurope', 'southeastasia'];
  const kind = opts.storage ?? 'fs';
  const streamed = opts.streamedRegions ?? [];
  if (streamed.length > 0 && kind !== 's3') throw new Error('streamedRegions needs S3 storage');
  const unknown = streamed.filter((n) => !names.includes(n));
  if (unknown.length > 0) throw new Error(`streamedRegions: unknown ${unknown.join(', ')}`);
  const redis = opts.redis ?? (await startRedis());
  const storages = await Promise.all(
    names.map(async (name) =>
      streamed.includes(name)
        ? { location: testS3Location(await newTestBucket(), testS3OtherName()), cleanup() {} }
        : newStorage(kind),
    ),
  );
  const regions: ClusterRegion[] = [];
  for (const [i, name] of names.entries()) {
    const port = await freePort();
    regions.push({
      name,
      role: i === 0 ? 'primary' : 'replica',
      url: `http://127.0.0.1:${port}`,
      host: `127.0.0.1:${port}`,
      storage: storages[i]!.location,
    });
  }
  const prefix = `t${Math.random().toString(36).slice(2, 8)}`;
  const raw = {
    redis: opts.redis?.connection ?? redis.url,
    regions: regions.map((r) => ({
      name: r.name,
      role: r.role,
      endpoint: r.url,
      storage: r.storage,
      ...(opts.scopes?.[r.name] && { scope: opts.scopes[r.name] }),
    })),
    replication: {
      prefix,
      concurrency: 4,
      reconcileIntervalSeconds: opts.reconcileIntervalSeconds ?? 3600,
    },
    s3: { partSize: 5 * 1024 * 1024 },
    cache: { ttlMs: 200 },
    auth: opts.auth ? { pollIntervalMs: 200, ...opts.auth, enabled: true } : { enabled: false },
    ...(opts.webhooks && { webhooks: opts.webhooks }),
    gc: opts.gc ?? { enabled: false, minGraceSeconds: 0 },
    ...(opts.softDelete && { softDelete: opts.softDelete }),
    ...(opts.upstream && { upstream: opts.upstream }),
    ...(opts.retention && { retention: opts.retention }),
    ...(opts.usage && { usage: opts.usage }),
    // Into the run's log directory (scanned for secrets), unless MERIDIAN_TEST_LOG asks for stdout.
    log:
      testLogFile() && !process.env.MERIDIAN_TEST_LOG
        ? { level: 'info' as const, file: testLogFile() }
        : { level: (process.env.MERIDIAN_TEST_LOG ?? 'silent') as 'silent' },
  };
  const dir = mkdtempSync(join(tmpdir(), 'meridian-cluster-'));
  const configFile = join(dir, 'cluster.json');
  writeFileSync(configFile, JSON.stringify(raw));
  const config = loadConfig(NodeConfigSchema, { file: configFile, env: {}, checkRegion: false });
  const nodes = new Map<string, RunningNode>();
  const startNode = async (name: string) => {
    nodes.set(
      name,
      await serve({ ...config, region: name }, { ownerPassword: opts.ownerPassword }),
    );
  };
  noteSecret(opts.ownerPassword);
  for (const r of regions) await startNode(r.name);
  let workers: WorkerRun | undefined;
  const children: ChildProcess[] = [];
  const cluster: TestCluster = {
    redis,
    regions,
    primary: regions[0]!,
    replicas: regions.slice(1),
    config,
    configFile,
    startWorkers: async (only = []) => {
      workers = await runWorkers({ ...config, region: regions[0]!.name }, only);
      return workers;
    },
    stopWorkers: async () => {
      await workers?.close();
      workers = undefined;
    },
    spawnWorker: (args = []) => {
      const child = spawn(process.execPath, [CLI, 'worker', '--config', configFile, ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, MERIDIAN_LOG_LEVEL: 'warn' },
      });
      children.push(child);
      return child;
    },
    stopNode: async (name) => {
      await nodes.get(name)?.close();
      nodes.delete(name);
    },
    startNode,
    close: async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await cluster.stopWorkers();
      for (const n of nodes.values()) await n.close();
      await redis.stop();
      for (const s of storages) s.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
