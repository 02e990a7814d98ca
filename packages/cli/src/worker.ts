import pino from 'pino';
import {
  Reconciler,
  reconciledKey,
  redisEpoch,
  startWorkers,
  type RunningWorkers,
} from '@meridian/replication';
import { withLatency } from '@meridian/storage';
import { openRegions } from './cluster';
import { latencyBetween, type NodeConfig } from './config';
import { startMetricsServer, type MetricsServer } from './metrics-server';

export interface WorkerRun extends RunningWorkers {
  /** Runs the reconciler over the worker's regions now. */
  reconcileNow(): Promise<void>;
  /** `http://host:port` of `/metrics`, when `worker.metricsListen` is set. */
  metricsUrl?: string;
}

/**
 * Starts replication workers for the named replica regions (all when empty), and a reconciler
 * that compares them with the primary at start and then every `reconcileIntervalSeconds`
 * (one worker process at a time per region, by a Redis lock).
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
  const reconciler = new Reconciler(primary.store, workers.queues, log);
  let running: Promise<void> = Promise.resolve();
  let closing = false;
  const reconcileOnce = async () => {
    for (const r of targets) {
      if (closing) return;
      const release = await workers.queues.lockNamed(
        `reconcile:${r.name}`,
        config.replication.reconcileIntervalSeconds * 1000,
      );
      if (!release) continue;
      try {
        await reconciler.reconcile(r.name, r.store);
      } catch (err) {
        log.warn({ region: r.name, err: (err as Error).message }, 'reconcile failed');
      } finally {
        await release().catch(() => {});
      }
      if (closing) return;
    }
  };
  let queued = 0;
  const reconcileNow = () => {
    queued++;
    return (running = running.then(reconcileOnce).finally(() => queued--));
  };
  void reconcileNow();
  const timer = setInterval(
    () => void reconcileNow(),
    config.replication.reconcileIntervalSeconds * 1000,
  );
  timer.unref();
  // Redis restarted or lost its data (a new epoch) and a region was not reconciled in it yet:
  // reconcile now, so queued work comes back and replicas trust their tag watch again.
  const prefix = workers.queues.prefix;
  let lastTry = { epoch: '', at: 0 };
  const watch = setInterval(() => {
    if (closing || queued > 0) return;
    void (async () => {
      const epoch = await redisEpoch(workers.queues.redis, prefix);
      const marks = await workers.queues.redis.mget(
        targets.map((r) => reconciledKey(prefix, r.name)),
      );
      if (marks.every((m) => m === epoch) || closing || queued > 0) return;
      if (epoch === lastTry.epoch && Date.now() - lastTry.at < 30_000) return;
      lastTry = { epoch, at: Date.now() };
      log.warn({ epoch }, 'Redis restarted or lost its data: reconciling');
      await reconcileNow();
    })().catch(() => {});
  }, 1000);
  watch.unref();
  let metrics: MetricsServer | undefined;
  if (config.worker.metricsListen) {
    try {
      metrics = await startMetricsServer(config.worker.metricsListen);
    } catch (err) {
      closing = true;
      clearInterval(timer);
      clearInterval(watch);
      await running;
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
    reconcileNow,
    metricsUrl: metrics?.url,
    close: async () => {
      closing = true;
      clearInterval(timer);
      clearInterval(watch);
      await metrics?.close();
      await running;
      await workers.close();
      await Promise.all(regions.map((r) => r.store.close()));
    },
  };
}
