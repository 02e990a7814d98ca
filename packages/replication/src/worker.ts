import type { Job, Worker } from 'bullmq';
import { bullmq, workerConnection } from '@meridian/redis';
import type { Logger } from 'pino';
import { OciError } from '@meridian/oci';
import type { ObjectStore } from '@meridian/storage';
import type { ActivityEvent } from './activity';
import { bytesCopied, jobsProcessed, lagSeconds } from './metrics';
import { ReplicationQueues, type RedisOptions, type SyncJobData } from './queues';
import { RegionSync, type Mutex } from './region-sync';
import { targetRef } from './targets';

export interface ReplicaRegion {
  name: string;
  store: ObjectStore;
  /** How this region's workers reach the primary's store (e.g. with simulated latency). Default `primary`. */
  source?: ObjectStore;
}

export interface WorkerOptions extends RedisOptions {
  primary: ObjectStore;
  /** Replica regions this worker serves. */
  regions: ReplicaRegion[];
  /** Jobs processed at once per region. Default 16 (jobs mostly wait on the primary). */
  concurrency?: number;
  /** How often pending changes whose job was lost are queued again, ms. Default 5000. */
  orphanSweepMs?: number;
  log: Logger;
}

export interface RunningWorkers {
  queues: ReplicationQueues;
  close(): Promise<void>;
}

/**
 * The cluster-wide lock a region's syncs run under (one copy of a digest, one job of a manifest
 * or tag at a time). A sync paused past the lock's lease (`ttlMs`) may have been overtaken by
 * the next holder and then written what it read before; it runs once more under a fresh lock.
 */
export function syncMutex(queues: ReplicationQueues, region: string, ttlMs = 15_000): Mutex {
  return (name, fn) => queues.withLock(`${region}:${name}`, fn, ttlMs, true);
}

/**
 * Runs sync workers for the given regions. Transient failures (network, 5xx, storage down)
 * throw and BullMQ retries them with exponential backoff; permanent ones (digest mismatch,
 * source gone, invalid content) fail at once and stay visible in the failed set.
 */
export async function startWorkers(opts: WorkerOptions): Promise<RunningWorkers> {
  const { Worker } = bullmq();
  const queues = new ReplicationQueues(opts);
  const workers: Worker<SyncJobData>[] = [];
  for (const region of opts.regions) {
    const sync = new RegionSync(
      region.name,
      region.source ?? opts.primary,
      region.store,
      syncMutex(queues, region.name),
      (bytes, seconds) => {
        queues.activity.recordCopy(region.name, bytes, seconds).catch((err: unknown) => {
          opts.log.debug({ err: (err as Error).message }, 'recording a copy failed');
        });
      },
    );
    const own = workerConnection(queues.redis);
    const worker = new Worker<SyncJobData>(
      ReplicationQueues.queueName(region.name),
      (job, token) => processJob(queues, sync, job, token, opts.log),
      {
        connection: own.connection,
        prefix: queues.bullPrefix,
        concurrency: opts.concurrency ?? 16,
        stalledInterval: 5000,
        maxStalledCount: 1000,
        lockDuration: 15000,
      },
    );
    own.endWith(worker);
    worker.on('failed', (job, err) => {
      if (job)
        opts.log.warn({ region: region.name, job: job.id, err: err.message }, 'sync job failed');
    });
    worker.on('error', (err) =>
      opts.log.error({ region: region.name, err: err.message }, 'worker error'),
    );
    workers.push(worker);
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  let sweeping: Promise<void> = Promise.resolve();
  const sweep = setInterval(() => {
    sweeping = (async () => {
      for (const region of opts.regions) {
        const n = await queues.requeueOrphans(region.name);
        if (n > 0)
          opts.log.info({ region: region.name, n }, 'queued again changes whose job was lost');
      }
    })().catch((err: unknown) =>
      opts.log.debug({ err: (err as Error).message }, 'sweeping lost sync jobs failed'),
    );
  }, opts.orphanSweepMs ?? 5000);
  sweep.unref();
  return {
    queues,
    close: async () => {
      clearInterval(sweep);
      await sweeping;
      await Promise.all(workers.map((w) => w.close()));
      await queues.close();
    },
  };
}

async function processJob(
  queues: ReplicationQueues,
  sync: RegionSync,
  job: Job<SyncJobData>,
  token: string | undefined,
  log: Logger,
): Promise<void> {
  const { DelayedError, UnrecoverableError } = bullmq();
  const { region, target } = job.data;
  const unlock = await queues.lock(region, target);
  if (!unlock) {
    // Another job is applying this object right now; come back shortly.
    await job.moveToDelayed(Date.now() + 250, token);
    throw new DelayedError();
  }
  const event = (result: ActivityEvent['result'], lag: number | null): ActivityEvent => ({
    region,
    kind: target.kind,
    repository: target.repository,
    reference: targetRef(target),
    result,
    lagSeconds: lag,
    at: new Date().toISOString(),
  });
  try {
    await queues.started(region, target, job.id ?? '');
    await sync.apply(target);
    const committedAt = await queues.finished(region, target, job.id ?? '');
    const lag = committedAt === undefined ? null : Math.max(0, Date.now() - committedAt) / 1000;
    if (lag !== null) lagSeconds.observe({ region, kind: target.kind }, lag);
    jobsProcessed.inc({ region, kind: target.kind, result: 'ok' });
    await recordActivity(queues, event('ok', lag), log);
  } catch (err) {
    const permanent =
      err instanceof UnrecoverableError || (err instanceof OciError && err.status < 500);
    jobsProcessed.inc({ region, kind: target.kind, result: permanent ? 'failed' : 'retry' });
    log.debug({ region, target, err: (err as Error).message }, 'sync attempt failed');
    // The last attempt: this job will not apply its change, so it stops counting as pending
    // (it is in the failed set; the reconciler finds the drift again).
    if (permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1))
      await queues.finished(region, target, job.id ?? '').catch(() => undefined);
    if (permanent)
      await recordActivity(
        queues,
        { ...event('failed', null), error: err.message.slice(0, 200) },
        log,
      );
    if (permanent && !(err instanceof UnrecoverableError))
      throw new UnrecoverableError((err as Error).message);
    throw err;
  } finally {
    await unlock().catch(() => {});
  }
}

/** Bytes this process copied into each region, as last reported to the activity history. */
const bytesReported = new Map<string, number>();
let bytesChain: Promise<unknown> = Promise.resolve();

/**
 * Records a finished job for the dashboard, with the bytes this process copied into the region
 * since its last record (jobs run concurrently, so bytes are attributed per process, not per
 * job; the totals are exact). Never fails the job.
 */
async function recordActivity(
  queues: ReplicationQueues,
  e: ActivityEvent,
  log: Logger,
): Promise<void> {
  const delta = bytesChain.then(async () => {
    const total = (await bytesCopied.get()).values
      .filter((v) => v.labels.region === e.region)
      .reduce((a, v) => a + v.value, 0);
    const d = total - (bytesReported.get(e.region) ?? 0);
    bytesReported.set(e.region, total);
    return d;
  });
  bytesChain = delta.catch(() => 0);
  try {
    await queues.activity.recordJob(e, await delta);
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'recording replication activity failed');
  }
}
