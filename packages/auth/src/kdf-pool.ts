import { OciError } from '@meridian/oci';
import { authKdfQueue, authKdfRejected } from './metrics';

export interface KdfPoolOptions {
  /**
   * Password hashes computed at once. Each holds one of libuv's threads (4 by default,
   * `UV_THREADPOOL_SIZE`), which file I/O and DNS share, so this stays well below that.
   * Default 1: three of libuv's threads, and on a 2-core machine a core, stay for requests
   * (`pnpm bench`, row 7).
   */
  concurrency?: number;
  /** Hashes waiting for a turn; beyond, an attempt is refused with 429. Default 16. */
  maxQueue?: number;
}

/**
 * A small bounded pool for the password KDF (scrypt), so that logins — honest or not, known
 * usernames or not — never occupy more than `concurrency` of libuv's threads and never queue
 * without bound: beyond `maxQueue` waiting, `run` throws `TOOMANYREQUESTS` with a
 * `retryAfter` estimated from the queue and the measured cost of one hash.
 */
export class KdfPool {
  private concurrency: number;
  private maxQueue: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** Moving average of one run, ms. */
  private avgMs = 100;

  constructor(opts: KdfPoolOptions = {}) {
    this.concurrency = opts.concurrency ?? 1;
    this.maxQueue = opts.maxQueue ?? 16;
  }

  configure(opts: KdfPoolOptions): void {
    if (opts.concurrency !== undefined) this.concurrency = Math.max(1, opts.concurrency);
    if (opts.maxQueue !== undefined) this.maxQueue = Math.max(0, opts.maxQueue);
  }

  /** Runs that are computing or waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.avgMs = 0.8 * this.avgMs + 0.2 * (performance.now() - t0);
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxQueue) {
      authKdfRejected.inc();
      const ahead = this.waiting.length + this.running;
      const retryAfter = Math.max(1, Math.ceil((ahead * this.avgMs) / this.concurrency / 1000));
      throw new OciError('TOOMANYREQUESTS', 'too many logins at once; try again shortly', {
        retryAfter,
      });
    }
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      authKdfQueue.set(this.waiting.length);
    });
  }

  /** Hands the slot to the next waiter (so no newcomer can take it in between), or frees it. */
  private release(): void {
    const next = this.waiting.shift();
    authKdfQueue.set(this.waiting.length);
    if (next) next();
    else this.running--;
  }
}
