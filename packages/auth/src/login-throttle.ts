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

export class LoginThrottle {
  private readonly pair: RateLimiterAbstract;
  private readonly address: RateLimiterAbstract;
  private readonly redis: Redis | undefined;

  constructor(opts: LoginThrottleOptions = {}) {
    const duration = Math.max(1, Math.ceil((opts.windowMs ?? 5 * 60_000) / 1000));
    const limits = {
      pair: opts.maxFailuresPerIdentity ?? 10,
      address: opts.maxFailuresPerAddress ?? 30,
    };
    if (opts.redisUrl) {
      // No offline queue and one try: with Redis down a login must not wait, it falls back to
      // the in-memory limiter (the "insurance").
      this.redis = createRedis(opts.redisUrl, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        lazyConnect: false,
      });
      this.redis.on('error', () => {}); // reconnects by itself; the insurance limiter serves
    }
    const make = (name: keyof typeof limits): RateLimiterAbstract => {
      const base = { points: limits[name], duration, keyPrefix: `${name}` };
      const memory = new RateLimiterMemory(base);
      if (!this.redis) return memory;
      return new RateLimiterRedis({
        ...base,
        keyPrefix: `${opts.redisPrefix ?? 'meridian:auth:login'}:${name}`,
        storeClient: this.redis,
        rejectIfRedisNotReady: true,
        insuranceLimiter: memory,
      });
    };
    this.pair = make('pair');
    this.address = make('address');
  }

  /** Seconds until `identity` may be tried from `address` again, or 0 now. Counts nothing. */
  async retryAfter(identity: string, address: string): Promise<number> {
    const [p, a] = await Promise.all([
      this.pair.get(pairKey(identity, address)),
      this.address.get(addressKey(address)),
    ]);
    return Math.max(wait(p, this.pair.points), wait(a, this.address.points));
  }

  /**
   * Counts one attempt before the password is checked. Returns the reservation, or the seconds
   * to wait when either limit is already reached (then nothing stays counted).
   */
  async reserve(identity: string, address: string): Promise<Reservation | number> {
    const keys: [string, string] = [pairKey(identity, address), addressKey(address)];
    const results = await Promise.allSettled([
      this.pair.consume(keys[0]),
      this.address.consume(keys[1]),
    ]);
    const refused = results.filter((r) => r.status === 'rejected');
    if (refused.length === 0) return { keys };
    // Over a limit (a RateLimiterRes: counted all the same, so given back) or the store failed
    // without insurance (an Error: nothing counted).
    const counted = (r: PromiseSettledResult<RateLimiterRes>) =>
      r.status === 'fulfilled' || r.reason instanceof RateLimiterRes;
    await Promise.allSettled([
      counted(results[0]) ? this.pair.reward(keys[0]) : undefined,
      counted(results[1]) ? this.address.reward(keys[1]) : undefined,
    ]);
    const secs = refused.map((r) =>
      r.reason instanceof RateLimiterRes ? Math.ceil(r.reason.msBeforeNext / 1000) : 1,
    );
    return Math.max(1, ...secs);
  }

  /** Gives a reservation back: the attempt succeeded, or never ran. */
  async release(r: Reservation): Promise<void> {
    await Promise.allSettled([this.pair.reward(r.keys[0]), this.address.reward(r.keys[1])]);
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
