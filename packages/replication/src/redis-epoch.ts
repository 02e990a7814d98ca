import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Redis holds bookkeeping only (ADR 0002), but some of it — queued jobs, the tags replicas know
 * are behind — is lost when Redis restarts without its data or is flushed. The *epoch* names the
 * data set Redis holds: the server's `run_id` (changes on every restart, even one that reloads
 * an old snapshot) and a generation key that anyone who finds it missing creates again (gone
 * after `FLUSHALL`/`FLUSHDB`). Whoever sees the epoch change must assume state was lost.
 */
export function generationKey(prefix: string): string {
  return `${prefix}:generation`;
}

/** The epoch in which the last reconcile of `region` completed (see `Reconciler`). */
export function reconciledKey(prefix: string, region: string): string {
  return `${prefix}:repl:${region}:reconciled`;
}

/** Reads the current epoch, creating the generation key when it is missing. */
export async function redisEpoch(redis: Redis, prefix: string): Promise<string> {
  const [info, [, gen]] = await Promise.all([
    redis.info('server'),
    redis
      .multi()
      .set(generationKey(prefix), randomUUID(), 'NX')
      .get(generationKey(prefix))
      .exec()
      .then((r) => (r?.[1] ?? [null, null]) as [unknown, unknown]),
  ]);
  const runId = /run_id:(\w+)/.exec(info)?.[1] ?? 'unknown';
  return `${runId}/${String(gen)}`;
}
