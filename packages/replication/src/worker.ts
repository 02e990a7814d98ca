import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { OciError } from '@meridian/oci';
import type { ObjectStore } from '@meridian/storage';
import { jobsProcessed, lagSeconds } from './metrics';
import { ReplicationQueues, type RedisOptions, type SyncJobData } from './queues';
import { RegionSync } from './region-sync';

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
  /** Jobs processed at once per region. Default 4. */
  concurrency?: number;
  log: Logger;
}

export interface RunningWorkers {
  queues: ReplicationQueues;
  close(): Promise<void>;
}

/**
 * Runs sync workers for the given regions. Transient failures (network, 5xx, storage down)
 * throw and BullMQ retries them with exponential backoff; permanent ones (digest mismatch,
 * source gone, invalid content) fail at once and stay visible in the failed set.
 */
export async function startWorkers(opts: WorkerOptions): Promise<RunningWorkers> {
  const queues = new ReplicationQueues(opts);
  const workers: Worker<SyncJobData>[] = [];
  for (const region of opts.regions) {
    const sync = new RegionSync(
      region.name,
      region.source ?? opts.primary,
      region.store,
      (name, fn) => queues.withLock(`${region.name}:${name}`, fn),
    );
    const worker = new Worker<SyncJobData>(
      ReplicationQueues.queueName(region.name),
      (job, token) => processJob(queues, sync, job, token, opts.log),
      {
        connection: queues.redis.duplicate({ maxRetriesPerRequest: null }),
        prefix: queues.bullPrefix,
        concurrency: opts.concurrency ?? 4,
        stalledInterval: 5000,
        maxStalledCount: 1000,
        lockDuration: 15000,
      },
    );
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
  return {
    queues,
    close: async () => {
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
  const { region, target } = job.data;
  const unlock = await queues.lock(region, target);
  if (!unlock) {
    // Another job is applying this object right now; come back shortly.
    await job.moveToDelayed(Date.now() + 250, token);
    throw new DelayedError();
  }
  try {
    await queues.started(region, target, job.id ?? '');
    await sync.apply(target);
    const committedAt = await queues.finished(region, target);
    if (committedAt !== undefined)
      lagSeconds.observe(
        { region, kind: target.kind },
        Math.max(0, Date.now() - committedAt) / 1000,
      );
    jobsProcessed.inc({ region, kind: target.kind, result: 'ok' });
  } catch (err) {
    const permanent =
      err instanceof UnrecoverableError || (err instanceof OciError && err.status < 500);
    jobsProcessed.inc({ region, kind: target.kind, result: permanent ? 'failed' : 'retry' });
    log.debug({ region, target, err: (err as Error).message }, 'sync attempt failed');
    if (permanent && !(err instanceof UnrecoverableError))
      throw new UnrecoverableError((err as Error).message);
    throw err;
  } finally {
    await unlock().catch(() => {});
  }
}
