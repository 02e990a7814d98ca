import { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { GarbageCollector, GcReport } from './collector';
import { recordFailure, recordRun } from './metrics';

export interface GcJobData {
  region: string;
  reason: 'schedule' | 'manual';
  dryRun: boolean;
  graceMs: number;
}

export interface GcScheduleOptions {
  redis: Redis;
  /** BullMQ key prefix (the replication queues' `bullPrefix`). */
  bullPrefix: string;
  /** The regions this process collects, each with its collector. */
  regions: { name: string; collector: GarbageCollector }[];
  /** `gc.intervalSeconds`; 0 turns the schedule off (runs on demand only). */
  intervalSeconds: number;
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
  const queues = opts.regions.map(
    (r) =>
      new Queue<GcJobData>(gcQueueName(r.name), {
        connection: opts.redis,
        prefix: opts.bullPrefix,
      }),
  );
  for (const [i, q] of queues.entries()) {
    const region = opts.regions[i]!.name;
    await q.setGlobalConcurrency(1);
    if (opts.intervalSeconds > 0)
      await q.upsertJobScheduler(
        `gc-${region}`,
        { every: opts.intervalSeconds * 1000 },
        {
          name: 'gc',
          data: { region, reason: 'schedule', dryRun: false, graceMs: opts.graceMs },
          opts: KEEP,
        },
      );
    else await q.removeJobScheduler(`gc-${region}`);
  }
  const workers = opts.regions.map((r) => {
    const w = new Worker<GcJobData, GcReport>(
      gcQueueName(r.name),
      async (job) => {
        const { dryRun, graceMs, reason } = job.data;
        try {
          const report = await r.collector.run({
            dryRun,
            graceMs,
            onProgress: (phase, done, total) => {
              if (done === total || done % 500 === 0)
                void job.updateProgress({ phase, done, total }).catch(() => undefined);
            },
          });
          recordRun(report);
          log.info({ ...report, reason }, 'garbage collection finished');
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
  return {
    close: async () => {
      // A run in progress is abandoned: its lock lapses and the next run starts over.
      await Promise.all(workers.map((w) => w.close(true)));
      await Promise.all(queues.map((q) => q.close()));
    },
  };
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
        if (j.failedReason) throw new Error(`gc ${data.region}: ${j.failedReason}`);
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
