import type { Redis } from 'ioredis';
import { bullmq } from '@meridian/redis';
import type { Logger } from 'pino';
import type { GarbageCollector, GcReport } from './collector';
import { gcLastSuccess, recordFailure, recordRun } from './metrics';

export interface GcJobData {
  region: string;
  /** `primary`: a replica's share of what the primary just freed (`digests`). */
  reason: 'schedule' | 'manual' | 'primary';
  mode: 'full' | 'incremental';
  dryRun: boolean;
  graceMs: number;
  digests?: string[];
  /** How many times a replica's share was deferred (its unlinks had not arrived yet). */
  attempt?: number;
}

export interface GcScheduleOptions {
  redis: Redis;
  /** BullMQ key prefix (the replication queues' `bullPrefix`). */
  bullPrefix: string;
  /** The regions this process collects, each with its collector. */
  regions: { name: string; collector: GarbageCollector }[];
  /** `gc.intervalSeconds`: incremental runs (primary regions); 0 turns them off. */
  intervalSeconds: number;
  /** `gc.fullIntervalSeconds`: full mark-and-sweep runs (every region); 0 turns them off. */
  fullIntervalSeconds: number;
  /** On a primary: the replica regions that then collect what it freed. */
  replicaRegions?: string[];
  /** How long a replica's deferred share waits before it is tried again, ms. Default 30 000. */
  deferMs?: number;
  /**
   * The Redis epoch (replication's `redisEpoch`): when it changes, Redis lost its data — the
   * schedulers and any queued replica shares with it — so they are set up again and every
   * region gets a full run.
   */
  epoch?: () => Promise<string>;
  /** How often the epoch is checked, ms. Default 5 000. */
  epochCheckMs?: number;
  /** `gc.graceSeconds` in ms, for scheduled runs. */
  graceMs: number;
  log: Logger;
}

export interface RunningGc {
  close(): Promise<void>;
}

/** BullMQ queue name of a region's GC runs. */
export function gcQueueName(region: string): string {
  return `gc-${region}`;
}

const KEEP = { removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } };

/**
 * GC runs on BullMQ: one queue per region with a global concurrency of 1 and a job scheduler
 * every `intervalSeconds`, so one run of a region happens at a time however many processes
 * serve it, and a process that dies mid-run hands the job on (a run is idempotent).
 */
export async function startGcSchedule(opts: GcScheduleOptions): Promise<RunningGc> {
  const { log } = opts;
  const { Queue, Worker } = bullmq();
  const queues = opts.regions.map(
    (r) =>
      new Queue<GcJobData>(gcQueueName(r.name), {
        connection: opts.redis,
        prefix: opts.bullPrefix,
      }),
  );
  const setUp = async (): Promise<void> => {
    for (const [i, q] of queues.entries()) {
      const region = opts.regions[i]!.name;
      const role = opts.regions[i]!.collector.role;
      await q.setGlobalConcurrency(1);
      const schedules: [string, 'full' | 'incremental', number][] = [
        [`gc-${region}`, 'incremental', role === 'primary' ? opts.intervalSeconds : 0],
        [`gc-full-${region}`, 'full', opts.fullIntervalSeconds],
      ];
      for (const [id, mode, seconds] of schedules) {
        if (seconds > 0)
          await q.upsertJobScheduler(
            id,
            { every: seconds * 1000 },
            {
              name: 'gc',
              data: { region, reason: 'schedule', mode, dryRun: false, graceMs: opts.graceMs },
              opts: KEEP,
            },
          );
        else await q.removeJobScheduler(id);
      }
      // The last success survives a restart (the alert on it must not go quiet with the process).
      const done = await q.getJobs(['completed'], 0, 49);
      const last = Math.max(0, ...done.filter((j) => !j.data.dryRun).map((j) => j.finishedOn ?? 0));
      if (last > 0) gcLastSuccess.set({ region }, last / 1000);
    }
  };
  await setUp();
  const workers = opts.regions.map((r) => {
    const w = new Worker<GcJobData, GcReport>(
      gcQueueName(r.name),
      async (job) => {
        const { dryRun, graceMs, reason, mode, digests } = job.data;
        try {
          const report = await r.collector.run({
            mode: mode ?? 'full',
            digests,
            dryRun,
            graceMs,
            onProgress: (phase, done, total) => {
              if (done === total || done % 500 === 0)
                void job.updateProgress({ phase, done, total }).catch(() => undefined);
            },
          });
          recordRun(report);
          const { deletedDigests, deferredDigests, ...summary } = report;
          log.info({ ...summary, reason }, 'garbage collection finished');
          if (!dryRun) await handOn(opts, job.data, deletedDigests, deferredDigests);
          return report;
        } catch (err) {
          recordFailure(r.name, dryRun);
          throw err;
        }
      },
      {
        connection: opts.redis.duplicate({ maxRetriesPerRequest: null }),
        prefix: opts.bullPrefix,
        concurrency: 1,
        lockDuration: 60_000,
      },
    );
    w.on('failed', (job, err) =>
      log.warn({ region: r.name, job: job?.id, err: err.message }, 'garbage collection failed'),
    );
    w.on('error', (err) => log.error({ region: r.name, err: err.message }, 'gc worker'));
    return w;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  let closing = false;
  let lastEpoch: string | undefined;
  let checking: Promise<void> = Promise.resolve();
  const checkEpoch = async (): Promise<void> => {
    const epoch = await opts.epoch!();
    if (closing) return;
    if (lastEpoch !== undefined && epoch !== lastEpoch) {
      log.warn({ epoch }, 'Redis lost its data: GC schedules set up again, a full run per region');
      await setUp();
      const id = epoch.replace(/[^\w-]/g, '-');
      for (const [i, q] of queues.entries()) {
        const region = opts.regions[i]!.name;
        await q.add(
          'gc',
          { region, reason: 'schedule', mode: 'full', dryRun: false, graceMs: opts.graceMs },
          { ...KEEP, jobId: `epoch-${id}` },
        );
      }
    }
    lastEpoch = epoch;
  };
  const watch = opts.epoch
    ? setInterval(() => {
        checking = checking
          .then(checkEpoch)
          .catch((err: unknown) =>
            log.debug({ err: (err as Error).message }, 'checking the Redis epoch failed'),
          );
      }, opts.epochCheckMs ?? 5000)
    : undefined;
  watch?.unref();
  if (opts.epoch) await checkEpoch().catch(() => undefined);
  return {
    close: async () => {
      closing = true;
      if (watch) clearInterval(watch);
      await checking;
      // A run in progress is abandoned: its lock lapses and the next run starts over. With
      // Redis unreachable BullMQ's close waits for it: a process must still stop.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...workers.map((w) => w.close(true)), ...queues.map((q) => q.close())]).catch(
          () => undefined,
        ),
        new Promise<void>((r) => (timer = setTimeout(r, 2000))),
      ]);
      clearTimeout(timer);
      for (const w of workers) void w.disconnect().catch(() => undefined);
    },
  };
}

/**
 * What a run leaves to others: a primary's freed blobs become each replica's incremental run;
 * a replica's deferred ones are tried again later (at most 20 times; then the full run has them).
 */
async function handOn(
  opts: GcScheduleOptions,
  data: GcJobData,
  deleted: string[],
  deferred: string[],
): Promise<void> {
  const jobs: { region: string; digests: string[]; attempt: number; delay: number }[] = [];
  if (deleted.length > 0 && data.reason !== 'primary')
    for (const region of opts.replicaRegions ?? [])
      // A moment later: the unlinks this run made reach the replicas through replication.
      jobs.push({ region, digests: deleted, attempt: 0, delay: 5_000 });
  if (deferred.length > 0 && (data.attempt ?? 0) < 20)
    jobs.push({
      region: data.region,
      digests: deferred,
      attempt: (data.attempt ?? 0) + 1,
      delay: opts.deferMs ?? 30_000,
    });
  const { Queue } = bullmq();
  for (const j of jobs) {
    const q = new Queue<GcJobData>(gcQueueName(j.region), {
      connection: opts.redis,
      prefix: opts.bullPrefix,
    });
    try {
      await q.add(
        'gc',
        {
          region: j.region,
          reason: 'primary',
          mode: 'incremental',
          dryRun: false,
          graceMs: data.graceMs,
          digests: j.digests,
          attempt: j.attempt,
        },
        { ...KEEP, delay: j.delay },
      );
    } finally {
      await q.close();
    }
  }
}

/**
 * Queues a GC run of `region` (served by whichever process collects it) and waits for its
 * report. `progress` is called as the run reports how far it is.
 */
export async function runGc(
  redis: Redis,
  bullPrefix: string,
  data: Omit<GcJobData, 'reason'>,
  opts: { timeoutMs?: number; progress?: (p: unknown) => void } = {},
): Promise<GcReport> {
  const { Job, Queue } = bullmq();
  const q = new Queue<GcJobData, GcReport>(gcQueueName(data.region), {
    connection: redis,
    prefix: bullPrefix,
  });
  try {
    const job = await q.add('gc', { ...data, reason: 'manual' }, KEEP);
    const deadline = Date.now() + (opts.timeoutMs ?? 3_600_000);
    let lastProgress = '';
    for (;;) {
      const j = await Job.fromId<GcJobData, GcReport>(q, job.id!);
      if (!j) throw new Error(`gc job ${job.id} of ${data.region} vanished`);
      if (j.finishedOn) {
        if (j.failedReason) throw new GcRunFailed(`gc ${data.region}: ${j.failedReason}`);
        return j.returnvalue;
      }
      const p = JSON.stringify(j.progress ?? '');
      if (p !== lastProgress) {
        lastProgress = p;
        opts.progress?.(j.progress);
      }
      if (Date.now() > deadline)
        throw new Error(
          `gc ${data.region}: no result within ${opts.timeoutMs} ms (is a process collecting it?)`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await q.close();
  }
}

/** A queued run that ended in failure (its reason is the collector's message, never a secret). */
export class GcRunFailed extends Error {}
