import pino from 'pino';
import {
  ReplicationStatus,
  redisEpoch,
  startReplicationSchedules,
  startWorkers,
  type RunningWorkers,
} from '@meridian/replication';
import { withLatency } from '@meridian/storage';
import { openRegions, regionScopes } from './cluster';
import { latencyBetween, type NodeConfig } from './config';
import { startMetricsServer, type MetricsServer } from '@meridian/observability';
import { parseListen } from '@meridian/registry';
import { GarbageCollector, startGcSchedule } from '@meridian/lifecycle';
import { startWebhookWorkers } from './webhooks-wiring';

export interface WorkerRun extends RunningWorkers {
  /** Runs the reconciler over the worker's regions now. */
  reconcileNow(): Promise<void>;
  /** `http://host:port` of `/metrics`, when `worker.metricsListen` is set. */
  metricsUrl?: string;
}

/**
 * Starts replication workers for the named replica regions (all when empty), and the reconcile
 * schedules (`startReplicationSchedules`): each region is compared with the primary at start,
 * then every `reconcileIntervalSeconds` and when Redis lost its data — one run per region at a
 * time across all worker processes, by BullMQ.
 */
export async function runWorkers(
  config: NodeConfig,
  only: string[],
  concurrency?: number,
): Promise<WorkerRun> {
  const log = pino(
    { level: config.log.level, base: { role: 'worker' } },
    pino.destination({ dest: config.log.file ?? 1, sync: true, mkdir: true }),
  );
  if (!config.redis) throw new Error('config key "redis" (MERIDIAN_REDIS): workers need Redis');
  const regions = await openRegions(config);
  const primary = regions.find((r) => r.role === 'primary');
  if (!primary) throw new Error('config key "regions": no primary region');
  const unknown = only.filter((n) => !regions.some((r) => r.name === n && r.role === 'replica'));
  if (unknown.length) throw new Error(`--region: not a replica region: ${unknown.join(', ')}`);
  const targets = regions.filter(
    (r) => r.role === 'replica' && (only.length === 0 || only.includes(r.name)),
  );
  const workers = await startWorkers({
    redisUrl: config.redis,
    prefix: config.replication.prefix,
    primary: primary.store,
    regions: targets.map((r) => ({
      ...r,
      source: withLatency(primary.store, latencyBetween(config, primary.name, r.name)),
    })),
    concurrency: concurrency ?? config.replication.concurrency,
    log,
  });
  const schedules = await startReplicationSchedules({
    queues: workers.queues,
    primary: primary.store,
    regions: targets.map((r) => ({ name: r.name, store: r.store })),
    intervalSeconds: config.replication.reconcileIntervalSeconds,
    log,
    scopes: regionScopes(regions),
  });
  // Each replica region's GC runs here: its writers are these workers (ADR 0012).
  const gc = await startGcSchedule({
    redis: workers.queues.redis,
    bullPrefix: workers.queues.bullPrefix,
    regions: targets.map((r) => ({
      name: r.name,
      collector: new GarbageCollector({
        region: r.name,
        store: r.store,
        role: 'replica',
        primary: primary.store,
        scope: r.scope,
        guard: {
          exclusive: (key, fn) => workers.queues.withLock(`${r.name}:${key}`, fn),
        },
      }),
    })),
    intervalSeconds: 0, // a replica's incremental runs follow the primary's
    fullIntervalSeconds: config.gc.enabled ? config.gc.fullIntervalSeconds : 0,
    graceMs: config.gc.graceSeconds * 1000,
    epoch: () => redisEpoch(workers.queues.redis, workers.queues.prefix),
    log,
  });
  // With `webhooks.delivery: workers`, deliveries are sent from here rather than the primary.
  const webhooks = startWebhookWorkers(
    config,
    regions,
    new ReplicationStatus(regions, workers.queues),
    log,
  );
  let metrics: MetricsServer | undefined;
  if (config.worker.metricsListen) {
    try {
      const { host, port } = parseListen(config.worker.metricsListen);
      metrics = await startMetricsServer(host, port);
    } catch (err) {
      await webhooks?.close();
      await gc.close();
      await schedules.close();
      await workers.close();
      throw new Error(
        `config key "worker.metricsListen" (MERIDIAN_WORKER_METRICS_LISTEN): cannot listen on ${config.worker.metricsListen}: ${(err as Error).message}`,
      );
    }
  }
  log.info(
    { regions: targets.map((r) => r.name), metrics: metrics?.url },
    'replication workers started',
  );
  return {
    queues: workers.queues,
    reconcileNow: async () => {
      await schedules.reconcileNow();
    },
    metricsUrl: metrics?.url,
    close: async () => {
      await metrics?.close();
      await webhooks?.close();
      await gc.close();
      await schedules.close();
      await workers.close();
      await Promise.all(regions.map((r) => r.store.close()));
    },
  };
}
