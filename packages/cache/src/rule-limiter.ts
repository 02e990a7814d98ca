import { UpstreamError } from './upstream-error';

/** Waiting upstream operations per rule beyond its concurrency; more are refused at once. */
const MAX_WAITING = 64;
/** How long a rule leaves its upstream alone after a `429`, a 5xx or a timeout, without `Retry-After`. */
const BACKOFF_MS = 10_000;

/**
 * Upstream protection for one cache rule on one node: at most `concurrency` operations in
 * flight (up to 64 more wait), at most `ratePerSecond` started per second (a token bucket),
 * and after the upstream answered `429` or failed, none at all until its `Retry-After` (or
 * 10 s) has passed. A refused operation is an `UpstreamError` the caller turns into `stale`
 * (a cached copy exists) or a `429`/`503` naming the rule.
 */
export class RuleLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private tokens: number;
  private refilled = Date.now();
  private backoffUntil = 0;
  /** What started the back-off: a `429` (`rate-limited`) or a failure (`unavailable`). */
  private backoffKind: 'rate-limited' | 'unavailable' = 'rate-limited';

  constructor(
    readonly rule: string,
    private readonly concurrency: number,
    private readonly ratePerSecond: number,
  ) {
    this.tokens = ratePerSecond;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const now = Date.now();
    if (now < this.backoffUntil)
      throw new UpstreamError(
        this.backoffKind,
        `${this.backoffKind === 'rate-limited' ? 'the upstream asked to slow down' : 'the upstream failed'}; not asked again before ${new Date(this.backoffUntil).toISOString()}`,
        Math.ceil((this.backoffUntil - now) / 1000),
      );
    this.tokens = Math.min(
      this.ratePerSecond,
      this.tokens + ((now - this.refilled) / 1000) * this.ratePerSecond,
    );
    this.refilled = now;
    if (this.tokens < 1)
      throw new UpstreamError('rate-limited', `over ${this.ratePerSecond} upstream requests/s`, 1);
    this.tokens -= 1;
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= MAX_WAITING)
        throw new UpstreamError('rate-limited', `too many upstream requests waiting`, 1);
      await new Promise<void>((r) => this.waiting.push(r));
    }
    this.active++;
    try {
      return await fn();
    } catch (err) {
      if (
        err instanceof UpstreamError &&
        (err.kind === 'rate-limited' || err.kind === 'unavailable')
      ) {
        this.backoffUntil = Date.now() + (err.retryAfter ? err.retryAfter * 1000 : BACKOFF_MS);
        this.backoffKind = err.kind;
      }
      throw err;
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
