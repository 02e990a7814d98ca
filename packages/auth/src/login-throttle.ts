/**
 * Throttles repeated failed logins, per identity and per client address: once `maxFailures`
 * failures fall within `windowMs`, further attempts are refused (before any password check)
 * until the oldest of them leaves the window. Successful logins are never counted. State is per
 * node, in memory, bounded in size.
 */
export interface LoginThrottleOptions {
  /** Failures per identity within the window before it is throttled. Default 10. */
  maxFailuresPerIdentity?: number;
  /** Failures per client address within the window before it is throttled. Default 30. */
  maxFailuresPerAddress?: number;
  /** Window, ms. Default 5 minutes. */
  windowMs?: number;
  /** Most keys tracked; the oldest are forgotten beyond. Default 100 000. */
  maxKeys?: number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly maxIdentity: number;
  private readonly maxAddress: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;

  constructor(opts: LoginThrottleOptions = {}) {
    this.maxIdentity = opts.maxFailuresPerIdentity ?? 10;
    this.maxAddress = opts.maxFailuresPerAddress ?? 30;
    this.windowMs = opts.windowMs ?? 5 * 60_000;
    this.maxKeys = opts.maxKeys ?? 100_000;
  }

  /** Seconds until an attempt may be made, or 0 when it may be made now. */
  retryAfter(identity: string, address: string, now = Date.now()): number {
    const wait = Math.max(
      this.wait(`i:${identity}`, this.maxIdentity, now),
      this.wait(`a:${address}`, this.maxAddress, now),
    );
    return wait > 0 ? Math.ceil(wait / 1000) : 0;
  }

  recordFailure(identity: string, address: string, now = Date.now()): void {
    this.add(`i:${identity}`, now);
    this.add(`a:${address}`, now);
  }

  private wait(key: string, max: number, now: number): number {
    const times = this.prune(key, now);
    if (times.length < max) return 0;
    return times[times.length - max]! + this.windowMs - now;
  }

  private prune(key: string, now: number): number[] {
    const times = this.failures.get(key);
    if (!times) return [];
    const kept = times.filter((t) => t > now - this.windowMs);
    if (kept.length === 0) this.failures.delete(key);
    else if (kept.length !== times.length) this.failures.set(key, kept);
    return kept;
  }

  private add(key: string, now: number): void {
    const times = this.prune(key, now);
    times.push(now);
    // Keep only as many as any limit needs.
    if (times.length > Math.max(this.maxIdentity, this.maxAddress)) times.shift();
    this.failures.delete(key);
    this.failures.set(key, times);
    if (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }
}
