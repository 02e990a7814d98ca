import type { Redis } from 'ioredis';
import { bullmq } from '@meridian/redis';
import type { Logger } from 'pino';
import type { RetentionRunReport, RetentionService } from './service';

export interface RetentionScheduleOptions {
  redis: Redis;
  /** BullMQ key prefix (the replication queues' `bullPrefix`). */
  bullPrefix: string;
  /** The primary region: retention decides there, every region follows through replication. */
  region: string;
  service: RetentionService;
  /** `retention.intervalSeconds`; 0 removes the schedule. */
  intervalSeconds: number;
  log: Logger;
}

/** BullMQ queue name of a region's retention runs. */
export function retentionQueueName(region: string): string {
  return `retention-${region}`;
}

const KEEP = { removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } };

/** One line a run leaves in the log: what went, what a rail or a first run stopped. */
export function summarize(r: RetentionRunReport): Record<string, unknown> {
  return {
    dryRun: r.dryRun,
    untagged: r.untagged && { manifests: r.untagged.totals.manifests },
    rules: r.rules.map((x) => ({
      rule: x.rule,
      tags: x.report.totals.tags,
      manifests: x.report.totals.manifests,
      refused: x.report.totals.refused,
      ...(x.stopped && { stopped: 'awaiting approval' }),
    })),
  };
}

/**
 * Retention on a BullMQ job scheduler, as GC: one queue per region with a global concurrency of
 * 1, a run every `intervalSeconds`, so one run happens at a time however many processes serve
 * the region, and a run that dies is simply the next one (a run is idempotent).
 */
export async function startRetentionSchedule(
  opts: RetentionScheduleOptions,
): Promise<{ close(): Promise<void> }> {
  const { log } = opts;
  const { Queue, Worker } = bullmq();
  const name = retentionQueueName(opts.region);
  const queue = new Queue(name, { connection: opts.redis, prefix: opts.bullPrefix });
  await queue.setGlobalConcurrency(1);
  if (opts.intervalSeconds > 0)
    await queue.upsertJobScheduler(
      name,
      { every: opts.intervalSeconds * 1000 },
      { name: 'retention', data: {}, opts: KEEP },
    );
  else await queue.removeJobScheduler(name);
  const worker = new Worker(
    name,
    async () => {
      const report = await opts.service.run({});
      log.info(summarize(report), 'retention run finished');
      return summarize(report);
    },
    {
      connection: opts.redis.duplicate({ maxRetriesPerRequest: null }),
      prefix: opts.bullPrefix,
      concurrency: 1,
      lockDuration: 60_000,
    },
  );
  worker.on('failed', (job, err) =>
    log.warn({ job: job?.id, err: err.message }, 'retention run failed'),
  );
  worker.on('error', (err) => log.error({ err: err.message }, 'retention worker'));
  await worker.waitUntilReady();
  return {
    close: async () => {
      // With Redis unreachable BullMQ's close waits forever: a process must still stop.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([worker.close(true), queue.close()]).catch(() => undefined),
        new Promise<void>((r) => (timer = setTimeout(r, 2000))),
      ]);
      clearTimeout(timer);
      void worker.disconnect().catch(() => undefined);
    },
  };
}
