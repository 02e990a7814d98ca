import type { Job } from 'bullmq';
import { bullmq, workerConnection } from '@meridian/redis';
import type { Logger } from 'pino';
import type { ObjectStore } from '@meridian/storage';
import type { ReplicationQueues } from './queues';
import { Reconciler, type ReconcileReport } from './reconciler';
import { reconciledKey, redisEpoch } from './redis-epoch';
import type { RegionScopes } from './scope';

export interface ReconcileJobData {
  region: string;
  /** `schedule` (the job scheduler), `epoch` (Redis lost its data) or `manual`. */
  reason: 'schedule' | 'epoch' | 'manual' | 'start';
}

export interface ScheduleOptions {
  queues: ReplicationQueues;
  primary: ObjectStore;
  /** The replica regions this process reconciles (each has a reconcile queue of its own). */
  regions: { name: string; store: ObjectStore }[];
  /** `replication.reconcileIntervalSeconds`: how often each region is compared with the primary. */
  intervalSeconds: number;
  /** How often the Redis epoch is checked, ms. Default 1000. */
  epochCheckMs?: number;
  log: Logger;
  /** What each replica region replicates (absent: everything; ADR 0026). */
  scopes?: RegionScopes;
}

export interface RunningSchedules {
  /** Queues a reconcile of every region now and resolves when they have run. */
  reconcileNow(): Promise<ReconcileReport[]>;
  close(): Promise<void>;
}

/** BullMQ queue name of a region's reconcile runs. */
export function reconcileQueueName(region: string): string {
  return `reconcile-${region}`;
}

/** Id of the job scheduler that reconciles `region` every interval. */
export function reconcileSchedulerId(region: string): string {
  return `reconcile-${region}`;
}

const KEEP = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };

/** Queues a one-off reconcile of `region` (a `jobId` makes repeats of the same id one job). */
export async function enqueueReconcile(
  queues: ReplicationQueues,
  region: string,
  reason: ReconcileJobData['reason'],
  jobId?: string,
): Promise<Job<ReconcileJobData>> {
  const { Queue } = bullmq();
  const q = new Queue<ReconcileJobData>(reconcileQueueName(region), {
    connection: queues.redis,
    prefix: queues.bullPrefix,
  });
  try {
    return await q.add('reconcile', { region, reason }, { ...KEEP, jobId });
  } finally {
    await q.close();
  }
}

/** Reconcile runs of `region` waiting or running now (a scheduled run not yet due is neither). */
export async function reconcilePending(queues: ReplicationQueues, region: string): Promise<number> {
  const { Queue } = bullmq();
  const q = new Queue<ReconcileJobData>(reconcileQueueName(region), {
    connection: queues.redis,
    prefix: queues.bullPrefix,
  });
  try {
    const n = await q.getJobCounts('waiting', 'active', 'prioritized');
    return Object.values(n).reduce((a, v) => a + v, 0);
  } finally {
    await q.close();
  }
}

/** One reconcile run's state and, once it has finished, what it found (its report). */
export interface ReconcileRunState {
  region: string;
  job: string;
  state: 'waiting' | 'active' | 'completed' | 'failed' | 'unknown';
  report?: ReconcileReport;
  failedReason?: string;
}

/** The state of reconcile run `job` of `region` (`unknown` once BullMQ has dropped it). */
export async function reconcileRunState(
  queues: ReplicationQueues,
  region: string,
  job: string,
): Promise<ReconcileRunState> {
  const { Queue } = bullmq();
  const q = new Queue<ReconcileJobData, ReconcileReport>(reconcileQueueName(region), {
    connection: queues.redis,
    prefix: queues.bullPrefix,
  });
  try {
    // The state first, then the job: a job read before it completed and asked its state after
    // is `completed` without its report (BullMQ writes both in one step when the job finishes).
    const state = await q.getJobState(job);
    if (state === 'unknown') return { region, job, state: 'unknown' };
    const j = await q.getJob(job);
    if (!j) return { region, job, state: 'unknown' };
    if (state === 'completed') return { region, job, state, report: j.returnvalue };
    if (state === 'failed') return { region, job, state, failedReason: j.failedReason };
    return { region, job, state: state === 'active' ? 'active' : 'waiting' };
  } finally {
    await q.close();
  }
}

export interface ReconcileRun {
  id: string;
  reason: ReconcileJobData['reason'];
  /** ms since the epoch */
  startedAt: number;
  finishedAt: number;
  failedReason?: string;
}

/** The last finished reconcile runs of `region` (BullMQ's job history), oldest first. */
export async function reconcileHistory(
  queues: ReplicationQueues,
  region: string,
  limit = 100,
): Promise<ReconcileRun[]> {
  const { Queue } = bullmq();
  const q = new Queue<ReconcileJobData>(reconcileQueueName(region), {
    connection: queues.redis,
    prefix: queues.bullPrefix,
  });
  try {
    const jobs = await q.getJobs(['completed', 'failed'], 0, limit - 1);
    return jobs
      .filter((j) => j.processedOn !== undefined && j.finishedOn !== undefined)
      .map((j) => ({
        id: String(j.id),
        reason: j.data.reason,
        startedAt: j.processedOn!,
        finishedAt: j.finishedOn!,
        ...(j.failedReason ? { failedReason: j.failedReason } : {}),
      }))
      .sort((a, b) => a.startedAt - b.startedAt);
  } finally {
    await q.close();
  }
}

/**
 * Reconcile runs on BullMQ job schedulers: one scheduler per replica region (every
 * `intervalSeconds`, the first run at once), one queue per region with a global concurrency of
 * 1, so however many worker processes serve a region, one reconcile of it runs at a time and a
 * worker that dies mid-run hands the job to another (BullMQ's job lock and stall check).
 *
 * When the Redis epoch changes (Redis restarted or lost its data, ADR 0008) the schedulers are
 * upserted again (a flush took them) and every region not yet reconciled in the new epoch gets a
 * one-off run, its job id naming (region, epoch) so all processes that notice queue one job.
 */
export async function startReplicationSchedules(opts: ScheduleOptions): Promise<RunningSchedules> {
  const { queues, log } = opts;
  const { Job, Queue, Worker } = bullmq();
  const reconciler = new Reconciler(opts.primary, queues, log, opts.scopes);
  const stores = new Map(opts.regions.map((r) => [r.name, r.store]));
  const scheduleQueues = new Map(
    opts.regions.map((r) => [
      r.name,
      new Queue<ReconcileJobData>(reconcileQueueName(r.name), {
        connection: queues.redis,
        prefix: queues.bullPrefix,
      }),
    ]),
  );
  const upsert = async () => {
    for (const [region, q] of scheduleQueues) {
      await q.setGlobalConcurrency(1);
      await q.upsertJobScheduler(
        reconcileSchedulerId(region),
        { every: opts.intervalSeconds * 1000 },
        { name: 'reconcile', data: { region, reason: 'schedule' }, opts: KEEP },
      );
    }
  };
  await upsert();
  const workers = opts.regions.map((r) => {
    const own = workerConnection(queues.redis);
    const w = new Worker<ReconcileJobData, ReconcileReport>(
      reconcileQueueName(r.name),
      async (job) => {
        const store = stores.get(job.data.region);
        if (!store) throw new Error(`not a region of this worker: ${job.data.region}`);
        return reconciler.reconcile(job.data.region, store);
      },
      {
        connection: own.connection,
        prefix: queues.bullPrefix,
        concurrency: 1,
        lockDuration: 30_000,
      },
    );
    own.endWith(w);
    w.on('failed', (job, err) =>
      log.warn({ region: r.name, job: job?.id, err: err.message }, 'reconcile failed'),
    );
    w.on('error', (err) => log.error({ region: r.name, err: err.message }, 'reconcile worker'));
    return w;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  // A worker that starts reconciles its regions once (as it always has): upserting an existing
  // scheduler keeps its next due time, so a restarted worker would otherwise wait a whole
  // interval to repair what went wrong while it was down. No job id: every start is a run of
  // its own; the queue's concurrency of 1 still keeps runs of one region apart.
  await Promise.all(
    [...scheduleQueues.entries()].map(([region, q]) =>
      q.add('reconcile', { region, reason: 'start' }, KEEP),
    ),
  );

  let closing = false;
  let lastEpoch = '';
  const checkEpoch = async () => {
    const epoch = await redisEpoch(queues.redis, queues.prefix);
    if (closing) return;
    if (lastEpoch && epoch !== lastEpoch) {
      log.warn({ epoch }, 'Redis restarted or lost its data: scheduling reconciles again');
      await upsert();
    }
    lastEpoch = epoch;
    const names = [...scheduleQueues.keys()];
    const marks = await queues.redis.mget(names.map((n) => reconciledKey(queues.prefix, n)));
    const id = epoch.replace(/[^\w-]/g, '-');
    for (const [i, region] of names.entries()) {
      if (marks[i] === epoch || closing) continue;
      const q = scheduleQueues.get(region)!;
      await q.add(
        'reconcile',
        { region, reason: 'epoch' },
        {
          ...KEEP,
          jobId: `epoch-${id}`,
          attempts: 10,
          backoff: { type: 'exponential', delay: 1000 },
        },
      );
    }
  };
  let checking: Promise<void> = Promise.resolve();
  const watch = setInterval(() => {
    checking = checking
      .then(checkEpoch)
      .catch((err: unknown) =>
        log.debug({ err: (err as Error).message }, 'checking the Redis epoch failed'),
      );
  }, opts.epochCheckMs ?? 1000);
  watch.unref();

  return {
    reconcileNow: async () => {
      const jobs = await Promise.all(
        [...scheduleQueues.entries()].map(([region, q]) =>
          q.add('reconcile', { region, reason: 'manual' }, KEEP),
        ),
      );
      const reports: ReconcileReport[] = [];
      for (const job of jobs) {
        for (;;) {
          const j = await Job.fromId<ReconcileJobData, ReconcileReport>(
            scheduleQueues.get(job.data.region)!,
            job.id!,
          );
          if (j?.finishedOn) {
            if (j.failedReason) throw new Error(`reconcile ${j.data.region}: ${j.failedReason}`);
            reports.push(j.returnvalue);
            break;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      return reports;
    },
    close: async () => {
      closing = true;
      clearInterval(watch);
      await checking;
      // Forced: a reconcile in progress is not waited for (over a slow WAN it can take a
      // while); its job's lock lapses and another worker, or this one's next start, runs it
      // again — a reconcile is idempotent.
      await Promise.all(workers.map((w) => w.close(true)));
      await Promise.all([...scheduleQueues.values()].map((q) => q.close()));
    },
  };
}
