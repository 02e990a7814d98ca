import { randomUUID } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';

/** When a webhook's endpoint is left alone, and how it is tried again. */
export interface BreakerPolicy {
  /** Consecutive failed attempts that open the breaker. Default 5. */
  threshold: number;
  /** The first opening lasts this long (ms); each failed probe doubles it. Default 5 000. */
  baseOpenMs: number;
  /** No opening lasts longer (ms). Default 300 000. */
  maxOpenMs: number;
  /**
   * A half-open probe holds the endpoint this long at most (ms): if its process dies without a
   * verdict, another process may probe after it. Default 30 000 (above any attempt's timeout).
   */
  probeMs: number;
}

export const DEFAULT_BREAKER: BreakerPolicy = {
  threshold: 5,
  baseOpenMs: 5000,
  maxOpenMs: 300_000,
  probeMs: 30_000,
};

/** What a process may do with an endpoint now. */
export type Admission =
  /** Send. `probe`: this attempt is the half-open probe (exactly one at a time). */
  | { send: true; probe: boolean; failures: number }
  /** Do not send; look again in `retryInMs`. */
  | { send: false; retryInMs: number };

/**
 * A circuit breaker per webhook endpoint: after `threshold` consecutive failed attempts the
 * endpoint is left alone (`baseOpenMs`, doubling per failed probe up to `maxOpenMs`); once that
 * passes, exactly one attempt (the probe) is let through; its success closes the breaker, its
 * failure opens it again. A failure of an attempt that was admitted before the breaker opened
 * neither counts nor extends the opening.
 */
export interface CircuitBreaker {
  admit(name: string): Promise<Admission>;
  /**
   * `admit`, as one more command of `pipeline` (the delivery worker's first round trip): returns
   * what reads the admission from that command's answer once the pipeline ran.
   */
  admitIn(
    pipeline: ChainableCommander,
    name: string,
  ): (answer: [Error | null, unknown] | undefined) => Admission;
  /** The endpoint answered (2xx, or a definitive 3xx/4xx): closes the breaker. */
  success(name: string, a: Admission): Promise<void>;
  /** A failed attempt (5xx, 408, network error, timeout). */
  failure(name: string, a: Admission): Promise<void>;
  /** No verdict on the endpoint (429, a refused target, not sent): frees the probe. */
  release(name: string, a: Admission): Promise<void>;
}

const CLOSED: Admission = { send: true, probe: false, failures: 0 };
/** How soon a process that found a probe in flight looks again (ms). */
const PROBE_WAIT_MS = 250;

/** The breaker in this process's memory: the fallback without Redis, and unit-testable. */
export class LocalBreakers implements CircuitBreaker {
  private readonly state = new Map<
    string,
    { failures: number; openUntil: number; probeUntil: number }
  >();
  readonly policy: BreakerPolicy;

  constructor(
    policy: Partial<BreakerPolicy> = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.policy = { ...DEFAULT_BREAKER, ...policy };
  }

  admit(name: string): Promise<Admission> {
    return Promise.resolve(this.admitNow(name));
  }

  admitIn(_: ChainableCommander, name: string): () => Admission {
    return () => this.admitNow(name);
  }

  admitNow(name: string): Admission {
    const s = this.state.get(name);
    if (!s) return CLOSED;
    const now = this.clock();
    if (s.failures < this.policy.threshold)
      return { send: true, probe: false, failures: s.failures };
    if (s.openUntil > now) return { send: false, retryInMs: s.openUntil - now };
    if (s.probeUntil > now) return { send: false, retryInMs: PROBE_WAIT_MS };
    s.probeUntil = now + this.policy.probeMs;
    return { send: true, probe: true, failures: s.failures };
  }

  success(name: string, _a?: Admission): Promise<void> {
    this.state.delete(name);
    return Promise.resolve();
  }

  failure(name: string, a: Admission): Promise<void> {
    const now = this.clock();
    const s = this.state.get(name) ?? { failures: 0, openUntil: 0, probeUntil: 0 };
    const probe = a.send && a.probe;
    if (s.openUntil > now && !probe) return Promise.resolve(); // admitted before it opened
    s.failures++;
    if (s.failures >= this.policy.threshold) s.openUntil = now + openFor(s.failures, this.policy);
    if (probe) s.probeUntil = 0;
    this.state.set(name, s);
    return Promise.resolve();
  }

  release(name: string, a: Admission): Promise<void> {
    const s = this.state.get(name);
    if (s && a.send && a.probe) s.probeUntil = 0;
    return Promise.resolve();
  }
}

/** How long the breaker stays open after the `failures`-th consecutive failure. */
export function openFor(failures: number, p: BreakerPolicy): number {
  const k = Math.min(Math.max(0, failures - p.threshold), 20);
  return Math.min(p.maxOpenMs, p.baseOpenMs * 2 ** k);
}

// One hash per endpoint: failures, openUntil, probe (the holder's token), probeUntil. Times are
// Redis's own clock (TIME), so processes on machines whose clocks differ agree.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// ARGV: threshold, token, probeMs. Returns {send (1/0), probe (1/0) or retryInMs, failures}.
const ADMIT = `${NOW}
local f = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if f < tonumber(ARGV[1]) then return {1, 0, f} end
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
if openUntil > now then return {0, openUntil - now, f} end
local probeUntil = tonumber(redis.call('HGET', KEYS[1], 'probeUntil') or '0')
if probeUntil > now then return {0, ${PROBE_WAIT_MS}, f} end
redis.call('HSET', KEYS[1], 'probe', ARGV[2], 'probeUntil', now + tonumber(ARGV[3]))
return {1, 1, f}`;

// ARGV: threshold, baseOpenMs, maxOpenMs, token, ttlMs, probe (1/0). Returns the failure count.
const FAILURE = `${NOW}
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
local probe = ARGV[6] == '1' and redis.call('HGET', KEYS[1], 'probe') == ARGV[4]
if openUntil > now and not probe then
  return tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
end
local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local threshold = tonumber(ARGV[1])
if f >= threshold then
  local k = math.min(f - threshold, 20)
  redis.call('HSET', KEYS[1], 'openUntil', now + math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) * 2 ^ k))
end
if probe then redis.call('HDEL', KEYS[1], 'probe', 'probeUntil') end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return f`;

// ARGV: token. Frees the probe when this process holds it.
const RELEASE = `
if redis.call('HGET', KEYS[1], 'probe') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'probe', 'probeUntil')
end
return 1`;

interface BreakerScripts {
  meridianBreakerAdmit(key: string, ...args: string[]): Promise<[number, number, number]>;
  meridianBreakerFailure(key: string, ...args: string[]): Promise<number>;
  meridianBreakerRelease(key: string, token: string): Promise<number>;
}

/**
 * The breaker shared by every process that delivers (nodes and workers of every region) through
 * Redis, one hash per endpoint: N processes open it after `threshold` failures in all, not N ×
 * `threshold`, and exactly one of them probes. A closed endpoint costs one round trip per
 * attempt (`admit`); `success` talks to Redis only when there was something to close. While
 * Redis does not answer, each process falls back to its own breaker (`LocalBreakers`).
 */
export class SharedBreakers implements CircuitBreaker {
  private readonly local: LocalBreakers;
  private readonly token = randomUUID();
  readonly policy: BreakerPolicy;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    policy: Partial<BreakerPolicy> = {},
  ) {
    this.policy = { ...DEFAULT_BREAKER, ...policy };
    this.local = new LocalBreakers(this.policy);
    if (!('meridianBreakerAdmit' in redis)) {
      redis.defineCommand('meridianBreakerAdmit', { numberOfKeys: 1, lua: ADMIT });
      redis.defineCommand('meridianBreakerFailure', { numberOfKeys: 1, lua: FAILURE });
      redis.defineCommand('meridianBreakerRelease', { numberOfKeys: 1, lua: RELEASE });
    }
  }

  private key(name: string): string {
    return `${this.prefix}:webhooks:breaker:${name}`;
  }

  private get scripts(): BreakerScripts {
    return this.redis as unknown as BreakerScripts;
  }

  async admit(name: string): Promise<Admission> {
    const p = this.redis.pipeline();
    const read = this.admitIn(p, name);
    return read((await p.exec().catch(() => null))?.[0]);
  }

  admitIn(
    pipeline: ChainableCommander,
    name: string,
  ): (answer: [Error | null, unknown] | undefined) => Admission {
    const p = this.policy;
    void (pipeline as unknown as BreakerScripts).meridianBreakerAdmit(
      this.key(name),
      String(p.threshold),
      this.token,
      String(p.probeMs),
    );
    return (answer) => {
      const v = answer?.[1];
      if (answer?.[0] || !Array.isArray(v)) return this.local.admitNow(name);
      const [send, x, failures] = v as [number, number, number];
      return send === 1 ? { send: true, probe: x === 1, failures } : { send: false, retryInMs: x };
    };
  }

  async success(name: string, a: Admission): Promise<void> {
    await this.local.success(name);
    if (a.send && !a.probe && a.failures === 0) return; // nothing recorded to close
    await this.redis.del(this.key(name)).catch(() => undefined);
  }

  async failure(name: string, a: Admission): Promise<void> {
    await this.local.failure(name, a);
    const p = this.policy;
    await this.scripts
      .meridianBreakerFailure(
        this.key(name),
        String(p.threshold),
        String(p.baseOpenMs),
        String(p.maxOpenMs),
        this.token,
        String(2 * p.maxOpenMs + p.probeMs),
        a.send && a.probe ? '1' : '0',
      )
      .catch(() => undefined);
  }

  async release(name: string, a: Admission): Promise<void> {
    await this.local.release(name, a);
    if (!(a.send && a.probe)) return;
    await this.scripts.meridianBreakerRelease(this.key(name), this.token).catch(() => undefined);
  }
}
