import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedis, type RedisConnection } from '@meridian/redis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';

/**
 * Throttles password guessing, per (identity, client address) and per client address, with
 * rate-limiter-flexible: in memory, or in Redis when one is given (so every node of a region
 * shares the counts; with Redis unreachable each node falls back to its own memory).
 *
 * There is deliberately no counter per identity alone: that would let anyone lock the real
 * owner out by failing on purpose. An attempt is reserved (counted) before the password is
 * checked, so concurrent guesses cannot all slip in before the first failure is recorded; a
 * successful login gives its reservation back.
 */
export interface LoginThrottleOptions {
  /** Failed logins for one identity from one client address within the window. Default 10. */
  maxFailuresPerIdentity?: number;
  /** Failed logins from one client address (any identity) within the window. Default 30. */
  maxFailuresPerAddress?: number;
  /** Window, ms. Default 5 minutes. */
  windowMs?: number;
  /** Share the counters through this Redis (e.g. `redis://host:6379`, or Sentinels). Default: per node. */
  redisUrl?: RedisConnection;
  /** Redis key prefix (the region's nodes must agree). Default `meridian:auth:login`. */
  redisPrefix?: string;
}

/** An attempt that may go ahead; give it back with `release` when it did not fail. */
export interface Reservation {
  keys: [string, string];
}

/**
 * How long a login waits for Redis's counts before it uses the node's own: well below the
 * gateway's 5 s upstream timeout, so a node whose Redis hangs still answers its clients.
 */
const COMMAND_TIMEOUT_MS = 1000;
/** After Redis failed a login's command, logins use the node's own counts this long (ms). */
const LOCAL_FOR_MS = 5000;

/** The two limits, over one store. */
interface Limiters {
  pair: RateLimiterAbstract;
  address: RateLimiterAbstract;
}

export class LoginThrottle {
  /** Shared through Redis, when one is given. */
  private readonly shared: Limiters | undefined;
  /** This node's own counts: without Redis, or while it fails (down, or frozen). */
  private readonly local: Limiters;
  private readonly redis: Redis | undefined;
  /** Until when logins skip Redis (it failed a command). */
  private localUntil = 0;

  constructor(opts: LoginThrottleOptions = {}) {
    const duration = Math.max(1, Math.ceil((opts.windowMs ?? 5 * 60_000) / 1000));
    const limits = {
      pair: opts.maxFailuresPerIdentity ?? 10,
      address: opts.maxFailuresPerAddress ?? 30,
    };
    const base = (name: keyof typeof limits) => ({
      points: limits[name],
      duration,
      keyPrefix: name,
    });
    this.local = {
      pair: new RateLimiterMemory(base('pair')),
      address: new RateLimiterMemory(base('address')),
    };
    if (opts.redisUrl) {
      // No offline queue, one try and a deadline per command: with Redis down — or frozen, its
      // connection open and nothing answered — a login must not wait on it.
      const redis = createRedis(opts.redisUrl, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        commandTimeout: COMMAND_TIMEOUT_MS,
        lazyConnect: false,
      });
      this.redis = redis;
      redis.on('error', () => {}); // reconnects by itself; the node's own counts serve
      const make = (name: keyof typeof limits): RateLimiterAbstract =>
        new RateLimiterRedis({
          ...base(name),
          keyPrefix: `${opts.redisPrefix ?? 'meridian:auth:login'}:${name}`,
          storeClient: redis,
          rejectIfRedisNotReady: true,
        });
      this.shared = { pair: make('pair'), address: make('address') };
    }
  }

  /**
   * Runs `op` on the shared counts, or on the node's own while Redis is failing: a Redis error
   * (not a limit reached) switches to them at once and for `LOCAL_FOR_MS`, so one login waits
   * at most one command timeout and the next ones do not wait at all.
   */
  private async run<T>(op: (l: Limiters) => Promise<T>): Promise<T> {
    if (this.shared && Date.now() >= this.localUntil) {
      try {
        return await op(this.shared);
      } catch (err) {
        if (err instanceof RateLimiterRes) throw err;
        this.localUntil = Date.now() + LOCAL_FOR_MS;
      }
    }
    return op(this.local);
  }

  /** Seconds until `identity` may be tried from `address` again, or 0 now. Counts nothing. */
  async retryAfter(identity: string, address: string): Promise<number> {
    const [p, a] = await this.run((l) =>
      Promise.all([l.pair.get(pairKey(identity, address)), l.address.get(addressKey(address))]),
    );
    return Math.max(wait(p, this.local.pair.points), wait(a, this.local.address.points));
  }

  /**
   * Counts one attempt before the password is checked. Returns the reservation, or the seconds
   * to wait when either limit is already reached (then nothing stays counted).
   */
  async reserve(identity: string, address: string): Promise<Reservation | number> {
    const keys: [string, string] = [pairKey(identity, address), addressKey(address)];
    return this.run(async (l) => {
      const results = await Promise.allSettled([
        l.pair.consume(keys[0]),
        l.address.consume(keys[1]),
      ]);
      const refused = results.filter((r) => r.status === 'rejected');
      if (refused.length === 0) return { keys };
      // Over a limit (a RateLimiterRes: counted all the same, so given back) or the store failed
      // (an Error: nothing counted there; the attempt is counted again on the node's own).
      const counted = (r: PromiseSettledResult<RateLimiterRes>) =>
        r.status === 'fulfilled' || r.reason instanceof RateLimiterRes;
      await Promise.allSettled([
        counted(results[0]) ? l.pair.reward(keys[0]) : undefined,
        counted(results[1]) ? l.address.reward(keys[1]) : undefined,
      ]);
      const failed = refused.find((r) => !(r.reason instanceof RateLimiterRes));
      if (failed) throw failed.reason;
      const secs = refused.map((r) => Math.ceil((r.reason as RateLimiterRes).msBeforeNext / 1000));
      return Math.max(1, ...secs);
    });
  }

  /** Gives a reservation back: the attempt succeeded, or never ran. */
  async release(r: Reservation): Promise<void> {
    // Given back where it was probably counted; a failure here only leaves one attempt counted.
    const l = this.shared && Date.now() >= this.localUntil ? this.shared : this.local;
    const results = await Promise.allSettled([
      l.pair.reward(r.keys[0]),
      l.address.reward(r.keys[1]),
    ]);
    if (l === this.shared && results.some((x) => x.status === 'rejected'))
      this.localUntil = Date.now() + LOCAL_FOR_MS;
  }

  /**
   * Counts one failure that did not need its own check (it shared one with an identical
   * attempt in flight). Returns the seconds to wait when this one went over a limit, else 0.
   */
  async recordFailure(identity: string, address: string): Promise<number> {
    const r = await this.reserve(identity, address);
    return typeof r === 'number' ? r : 0;
  }

  async close(): Promise<void> {
    if (this.redis) await this.redis.quit().catch(() => this.redis?.disconnect());
  }
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('base64url').slice(0, 22);
}

/** Fixed-length keys: usernames and forwarded addresses come from the client. */
function pairKey(identity: string, address: string): string {
  return hash(`${identity}\0${address}`);
}

function addressKey(address: string): string {
  return hash(address);
}

function wait(res: RateLimiterRes | null, points: number): number {
  if (!res || res.consumedPoints < points) return 0;
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}
