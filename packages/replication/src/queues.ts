import type { JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { bullmq, createRedis, type RedisConnection } from '@meridian/redis';
import { ReplicationActivity } from './activity';
import { parseTargetId, targetId, type SyncTarget } from './targets';

/** Options shared by every replication component that talks to Redis. */
export interface RedisOptions {
  /** `redis://host:port/db`, or Sentinels and the master's name (`@meridian/redis`). */
  redisUrl: RedisConnection;
  /** Key prefix for queues and replication state, so clusters can share a Redis. Default `meridian`. */
  prefix?: string;
}

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

export interface SyncJobData {
  region: string;
  target: SyncTarget;
  /** Commit time on the primary of the change that queued this job (ms). */
  committedAt: number;
}

const JOB_OPTIONS: JobsOptions = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { count: 200 },
  removeOnFail: { count: 5000 },
};

// A job id is live while its BullMQ hash exists without a finish time (waiting, delayed, active,
// or back in the queue after its worker died). KEYS[n] is the queue's job-key prefix.
const LIVE = `
local function live(prefix, id)
  return id and redis.call('EXISTS', prefix .. id) == 1
    and redis.call('HEXISTS', prefix .. id, 'finishedOn') == 0
end`;

// Marks (region, object) queued and records the oldest unapplied change; returns a new job id,
// or nil when a live job for the object is already waiting. A mark whose job does not exist (the
// process that made it died before `queue.add`, or the job is gone) is replaced: de-duplication
// state never outlives its job.
const ENQUEUE = `${LIVE}
if live(KEYS[5], redis.call('HGET', KEYS[1], ARGV[1])) then return false end
local n = redis.call('INCR', KEYS[4])
local jobId = ARGV[1] .. '#' .. n
redis.call('HSET', KEYS[1], ARGV[1], jobId)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1])
return jobId`;

// A job starting clears its queued mark, so changes committed from now on queue a new job; it
// is recorded as the object's running job until it finishes.
const START = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1`;

// A job that applied the primary's state (or gave up for good): returns the oldest change's
// commit time it covered; the pending entry stays (with the newer change's time) when another
// change is queued.
const FINISH = `
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[4], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[4], ARGV[1]) end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  local at = redis.call('HGET', KEYS[2], ARGV[1])
  if at then redis.call('ZADD', KEYS[3], at, ARGV[1]) end
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return score`;

// Pending changes older than ARGV[1] that no live job (queued or running) will apply: their
// marks are cleared and they are returned with their commit times, to be queued again.
const ORPHANS = `${LIVE}
local out = {}
local xs = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #xs, 2 do
  local x = xs[i]
  if not live(KEYS[5], redis.call('HGET', KEYS[1], x)) and not live(KEYS[5], redis.call('HGET', KEYS[4], x)) then
    redis.call('HDEL', KEYS[1], x)
    redis.call('HDEL', KEYS[4], x)
    table.insert(out, x)
    table.insert(out, xs[i + 1])
  end
end
return out`;

/**
 * The per-region sync queues (BullMQ) plus the bookkeeping that makes them convergent: at most
 * one waiting job per (region, object), a change that lands while a job runs queues another,
 * and a sorted set of unapplied changes gives the age of the oldest one (the region's lag).
 */
export class ReplicationQueues {
  readonly redis: Redis;
  readonly prefix: string;
  /** Recent jobs and per-region history for the dashboard, in the same Redis. */
  readonly activity: ReplicationActivity;
  private readonly queues = new Map<string, Queue<SyncJobData>>();

  constructor(readonly opts: RedisOptions) {
    this.prefix = opts.prefix ?? 'meridian';
    this.redis = createRedis(opts.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
    this.activity = new ReplicationActivity(this.redis, this.prefix);
    this.redis.defineCommand('meridianEnqueue', { numberOfKeys: 5, lua: ENQUEUE });
    this.redis.defineCommand('meridianStart', { numberOfKeys: 3, lua: START });
    this.redis.defineCommand('meridianFinish', { numberOfKeys: 4, lua: FINISH });
    this.redis.defineCommand('meridianOrphans', { numberOfKeys: 5, lua: ORPHANS });
  }

  /** BullMQ queue name of a region. */
  static queueName(region: string): string {
    return `sync-${region}`;
  }

  get bullPrefix(): string {
    return `${this.prefix}:bull`;
  }

  queue(region: string): Queue<SyncJobData> {
    let q = this.queues.get(region);
    if (!q) {
      q = new (bullmq().Queue)<SyncJobData>(ReplicationQueues.queueName(region), {
        connection: this.redis,
        prefix: this.bullPrefix,
        defaultJobOptions: JOB_OPTIONS,
      });
      this.queues.set(region, q);
    }
    return q;
  }

  /** queued marks, their commit times, pending changes, job counter, running jobs, job-key prefix. */
  private keys(region: string): [string, string, string, string, string, string] {
    const p = `${this.prefix}:repl:${region}`;
    return [
      `${p}:queued`,
      `${p}:queuedAt`,
      `${p}:pending`,
      `${p}:seq`,
      `${p}:running`,
      `${this.bullPrefix}:${ReplicationQueues.queueName(region)}:`,
    ];
  }

  /**
   * Queues a sync of `target` in `region` unless one is already waiting. `front` puts it at the
   * head of the queue (a replica missed it and a client is waiting). Returns whether it queued.
   */
  async enqueue(
    region: string,
    target: SyncTarget,
    committedAt: number,
    front = false,
  ): Promise<boolean> {
    const id = targetId(target);
    const [queued, queuedAt, pending, seq, , jobKeys] = this.keys(region);
    const jobId = (await (this.redis as unknown as ScriptRedis).meridianEnqueue(
      queued,
      queuedAt,
      pending,
      seq,
      jobKeys,
      id,
      String(committedAt),
    )) as string | null;
    if (!jobId) {
      if (front) await this.bump(region, target);
      return false;
    }
    await this.queue(region).add('sync', { region, target, committedAt }, { jobId, lifo: front });
    return true;
  }

  /**
   * Moves the waiting (or backing-off) job for `target` to the front. The job may start or
   * finish between the look-up and the move: that race is expected and harmless (it is running,
   * or done), so it is not an error.
   */
  async bump(region: string, target: SyncTarget): Promise<void> {
    const id = targetId(target);
    const jobId = await this.redis.hget(this.keys(region)[0], id);
    const job = jobId ? await bullmq().Job.fromId(this.queue(region), jobId) : undefined;
    if (!job) {
      // The job started meanwhile (its mark cleared) or is gone: queue one (a dead mark is replaced).
      await this.enqueue(region, target, Date.now(), true);
      return;
    }
    try {
      const state = await job.getState();
      if (state === 'delayed') await job.promote();
      else if (state === 'waiting' || state === 'prioritized')
        await job.changePriority({ lifo: true });
    } catch (err) {
      // "not in the delayed state", "missing key": the job moved on between the two calls.
      if (!/not in the|missing|does not exist/i.test((err as Error).message)) throw err;
    }
  }

  /** Called when a job starts: later changes to the object will queue a new job. */
  async started(region: string, target: SyncTarget, jobId: string): Promise<void> {
    const [queued, queuedAt, , , running] = this.keys(region);
    await (this.redis as unknown as ScriptRedis).meridianStart(
      queued,
      queuedAt,
      running,
      targetId(target),
      jobId,
    );
  }

  /**
   * Called when a job applied the primary's state, or failed for good (its change will not be
   * applied by it; the reconciler finds it again): returns the oldest commit time it covered.
   */
  async finished(region: string, target: SyncTarget, jobId: string): Promise<number | undefined> {
    const [queued, queuedAt, pending, , running] = this.keys(region);
    const score = (await (this.redis as unknown as ScriptRedis).meridianFinish(
      queued,
      queuedAt,
      pending,
      running,
      targetId(target),
      jobId,
    )) as string | null;
    return score === null ? undefined : Number(score);
  }

  /**
   * Queues again every pending change older than `graceMs` that no live job will apply (its
   * job was lost: a process killed between the mark and the job, a job removed), so pending
   * and lag drain to a truthful zero without waiting for a reconcile. Returns how many.
   */
  async requeueOrphans(region: string, graceMs = 5000, limit = 500): Promise<number> {
    const [queued, queuedAt, pending, , running, jobKeys] = this.keys(region);
    const r = (await (this.redis as unknown as ScriptRedis).meridianOrphans(
      queued,
      queuedAt,
      pending,
      running,
      jobKeys,
      String(Date.now() - graceMs),
      String(limit),
    )) as string[];
    let n = 0;
    for (let i = 0; i + 1 < r.length; i += 2) {
      const target = parseTargetId(r[i]!);
      if (!target) {
        await this.redis.zrem(pending, r[i]!);
        continue;
      }
      if (await this.enqueue(region, target, Number(r[i + 1]))) n++;
    }
    return n;
  }

  /** Commit time of the oldest change not yet applied in the region, if any. */
  async oldestPending(region: string): Promise<number | undefined> {
    const r = (await this.redis.zrange(this.keys(region)[2], 0, '0', 'WITHSCORES')) as unknown[];
    const first = r[0];
    if (first === undefined) return undefined;
    // RESP2 answers [member, score]; RESP3 answers [[member, score]].
    return Number(Array.isArray(first) ? first[1] : r[1]);
  }

  /** Commit time of the pending change for one object, if it is not applied yet. */
  async pendingSince(region: string, target: SyncTarget): Promise<number | undefined> {
    const s = await this.redis.zscore(this.keys(region)[2], targetId(target));
    return s === null ? undefined : Number(s);
  }

  async pendingCount(region: string): Promise<number> {
    return this.redis.zcard(this.keys(region)[2]);
  }

  async counts(region: string): Promise<QueueCounts> {
    const c = await this.queue(region).getJobCounts(
      'waiting',
      'prioritized',
      'active',
      'delayed',
      'failed',
    );
    return {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      failed: c.failed ?? 0,
    };
  }

  /**
   * Takes a lock on (region, object) so two jobs never apply the same object at once. The lock
   * lives `ttlMs` and is refreshed while held, so a killed worker blocks the object only briefly.
   */
  lock(
    region: string,
    target: SyncTarget,
    ttlMs = 15_000,
  ): Promise<(() => Promise<boolean>) | undefined> {
    return this.lockNamed(`${region}:lock:${targetId(target)}`, ttlMs);
  }

  /**
   * Runs `fn` holding the named lock, waiting (polling) while someone else holds it.
   *
   * A holder paused longer than `ttlMs` (SIGSTOP, a stuck disk) loses the lock to the next one
   * and may then write what it read before that one ran. With `again`, `fn` (which must read the
   * current state, as a sync does) is run once more under a fresh lock when the lock lapsed
   * while it ran, so the state it leaves is read after every other holder's.
   */
  async withLock<T>(name: string, fn: () => Promise<T>, ttlMs = 15_000, again = false): Promise<T> {
    for (;;) {
      let release: (() => Promise<boolean>) | undefined;
      while (!(release = await this.lockNamed(name, ttlMs)))
        await new Promise((r) => setTimeout(r, 50));
      let held = true;
      let result: T;
      try {
        result = await fn();
      } finally {
        held = await release().catch(() => true);
      }
      if (held || !again) return result;
    }
  }

  /**
   * A named lock, refreshed while held; resolves undefined when someone else holds it. Its
   * release resolves whether the lock was still this holder's (false: it lapsed meanwhile).
   */
  async lockNamed(name: string, ttlMs: number): Promise<(() => Promise<boolean>) | undefined> {
    const key = `${this.prefix}:repl:${name}`;
    const token = `${process.pid}-${Math.random()}`;
    const ok = await this.redis.set(key, token, 'PX', ttlMs, 'NX');
    if (ok !== 'OK') return undefined;
    const refresh = setInterval(
      () => {
        this.redis
          .eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
            1,
            key,
            token,
            String(ttlMs),
          )
          .catch(() => {});
      },
      Math.max(1000, Math.floor(ttlMs / 3)),
    );
    refresh.unref();
    return async () => {
      clearInterval(refresh);
      const deleted = await this.redis.eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        1,
        key,
        token,
      );
      return deleted === 1;
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.redis.disconnect();
  }
}

interface ScriptRedis {
  meridianEnqueue(...args: string[]): Promise<unknown>;
  meridianStart(...args: string[]): Promise<unknown>;
  meridianFinish(...args: string[]): Promise<unknown>;
  meridianOrphans(...args: string[]): Promise<unknown>;
}
