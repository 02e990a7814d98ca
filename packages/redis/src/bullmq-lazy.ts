import type * as BullMQ from 'bullmq';

let loaded: typeof BullMQ | undefined;

/**
 * BullMQ, loaded when the first queue, worker or job error is made: a node with no Redis
 * configured never loads it, nor ioredis, msgpackr, cron-parser, luxon (with ioredis, about
 * 8 MB of an idle node's resident memory on Node 24: ADR 0028, issue 18's "small nodes"). The
 * one loader every package uses for BullMQ's classes (`new (bullmq().Queue)(…)`,
 * `err instanceof bullmq().UnrecoverableError`); type-only imports of `bullmq` load nothing.
 */
export function bullmq(): typeof BullMQ {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('bullmq') as typeof BullMQ;
  return loaded;
}

/**
 * BullMQ's `UnrecoverableError`: thrown from a job, it fails the job at once instead of being
 * retried (a permanent failure: digest mismatch, source gone, 4xx).
 */
export function unrecoverable(message: string): Error {
  return new (bullmq().UnrecoverableError)(message);
}
