/** Retry timing for deliveries: exponential backoff with jitter, capped, up to a horizon. */
export interface RetryPolicy {
  /** First retry after about this long (ms). Default 1000. */
  baseMs: number;
  /** No wait between two attempts exceeds this (ms). Default 3 600 000 (1 h). */
  maxMs: number;
  /** After this long since the first attempt (ms), the delivery is dead-lettered. Default 24 h. */
  horizonMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  baseMs: 1000,
  maxMs: 3_600_000,
  horizonMs: 86_400_000,
};

/** The wait before attempt `attemptsMade + 1` (nominal, without jitter). */
export function nominalDelay(attemptsMade: number, p: RetryPolicy): number {
  return Math.min(p.maxMs, p.baseMs * 2 ** Math.max(0, attemptsMade - 1));
}

/** The wait with ±20 % jitter, so receivers that come back are not hit by a synchronized wave. */
export function backoffDelay(attemptsMade: number, p: RetryPolicy, random = Math.random): number {
  return Math.round(nominalDelay(attemptsMade, p) * (0.8 + 0.4 * random()));
}

/** How many attempts fit in the horizon with the nominal waits (at least 1). */
export function attemptsWithin(p: RetryPolicy): number {
  let waited = 0;
  let n = 1;
  while (n < 1000) {
    const next = nominalDelay(n, p);
    if (waited + next > p.horizonMs) break;
    waited += next;
    n++;
  }
  return n;
}

/** In-process concurrency per webhook: at most `limit` deliveries to one endpoint at once. */
export class EndpointSlots {
  private readonly inFlight = new Map<string, number>();
  private readonly waiting = new Map<string, ((ok: boolean) => void)[]>();

  constructor(private readonly limit = 4) {}

  tryAcquire(name: string): boolean {
    const n = this.inFlight.get(name) ?? 0;
    if (n >= this.limit) return false;
    this.inFlight.set(name, n + 1);
    return true;
  }

  /** `tryAcquire`, waiting up to `maxWaitMs` for a slot to be released; false when none was. */
  acquire(name: string, maxWaitMs: number): Promise<boolean> {
    if (this.tryAcquire(name)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const list = this.waiting.get(name) ?? [];
      const timer = setTimeout(() => {
        const i = list.indexOf(done);
        if (i >= 0) list.splice(i, 1);
        resolve(false);
      }, maxWaitMs);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        resolve(ok);
      };
      list.push(done);
      this.waiting.set(name, list);
    });
  }

  release(name: string): void {
    const next = this.waiting.get(name)?.shift();
    if (next) return next(true); // the slot goes straight to a waiter
    const n = (this.inFlight.get(name) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(name);
    else this.inFlight.set(name, n);
  }
}
