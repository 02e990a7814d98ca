import { OffsetStore, type EventJournal, type Sequenced } from './event-journal';

export interface DurableSubscriber<T> {
  /** Names the subscriber's offset file: keep it stable across restarts. */
  name: string;
  /** Throws (or rejects) to have the event delivered again after a backoff. */
  deliver: (event: T) => void | Promise<void>;
  /** A delivery that takes longer counts as failed and is retried. Default 30 000 ms. */
  timeoutMs?: number;
  /**
   * Called after a run of deliveries, before the subscriber's offset is saved past them: a
   * subscriber that buffers what it is given (the audit log writes one object per run) makes
   * it durable here. Throws (or rejects, or exceeds `timeoutMs`) to have the whole run
   * delivered again after a backoff; so it must drop what it buffered when it fails.
   */
  flush?: () => void | Promise<void>;
}

export interface EventDispatcherOptions {
  /** Where acknowledged offsets live; in memory when absent. */
  offsetsDir?: string;
  /** First retry delay; doubles per failure up to `maxBackoffMs`. Default 100 ms. */
  backoffMs?: number;
  /** Default 10 000 ms. */
  maxBackoffMs?: number;
  /** Entries delivered between two offset writes at most. Default 256. */
  batch?: number;
  onError?: (err: unknown, subscriber: string, event: Sequenced) => void;
}

interface Running<T> {
  sub: DurableSubscriber<T>;
  offset: number;
  stopped: boolean;
  /** Resolves the wait for new entries. */
  wake: (() => void) | undefined;
  /** Cuts short a backoff or a delivery in flight (on stop). */
  abort: (() => void) | undefined;
  /** Consecutive failed flushes (the backoff before the run is delivered again). */
  flushFailures: number;
  loop: Promise<void>;
}

/**
 * Delivers journal entries to each subscriber on its own loop, in sequence order, at least once:
 * a subscriber's offset is saved after delivery, and on start it resumes after its saved offset.
 * A failing or hanging subscriber is retried with backoff and holds back only itself. Segments
 * every subscriber acknowledged are removed from the journal.
 */
export class EventDispatcher<T extends Sequenced> {
  private readonly offsets: OffsetStore;
  private readonly running = new Map<string, Running<T>>();
  private readonly unlisten: () => void;
  private truncating = false;

  constructor(
    private readonly journal: EventJournal<T>,
    private readonly opts: EventDispatcherOptions = {},
  ) {
    this.offsets = new OffsetStore(opts.offsetsDir);
    this.unlisten = journal.onAppend(() => {
      for (const r of this.running.values()) r.wake?.();
    });
  }

  /** Starts delivering to `sub` from its saved offset (from the oldest entry if it has none). */
  async attach(sub: DurableSubscriber<T>): Promise<() => Promise<void>> {
    if (this.running.has(sub.name)) throw new Error(`event subscriber ${sub.name} is attached`);
    const saved = await this.offsets.load(sub.name);
    const r: Running<T> = {
      sub,
      offset: saved ?? this.journal.first - 1,
      stopped: false,
      wake: undefined,
      abort: undefined,
      flushFailures: 0,
      loop: Promise.resolve(),
    };
    this.running.set(sub.name, r);
    r.loop = this.run(r);
    return async () => {
      await this.stop(r);
    };
  }

  /** The acknowledged offset of each attached subscriber. */
  acknowledged(): Record<string, number> {
    return Object.fromEntries([...this.running].map(([n, r]) => [n, r.offset]));
  }

  /** Stops every loop (a delivery in flight is abandoned, not awaited past its timeout). */
  async close(): Promise<void> {
    this.unlisten();
    await Promise.all([...this.running.values()].map((r) => this.stop(r)));
  }

  private async stop(r: Running<T>): Promise<void> {
    r.stopped = true;
    r.wake?.();
    r.abort?.();
    this.running.delete(r.sub.name);
    await r.loop;
  }

  private async run(r: Running<T>): Promise<void> {
    const batchSize = this.opts.batch ?? 256;
    while (!r.stopped) {
      const batch = await this.journal.read(r.offset, batchSize);
      if (batch.length === 0) {
        await new Promise<void>((resolve) => {
          r.wake = resolve;
          if (this.journal.last > r.offset || r.stopped) resolve();
        });
        r.wake = undefined;
        continue;
      }
      const before = r.offset;
      for (const e of batch) {
        if (!(await this.deliver(r, e))) break;
        r.offset = e.sequence;
      }
      if (r.offset !== before && !(await this.flushed(r, batch[0]!))) {
        r.offset = before; // delivered again: nothing past `before` is acknowledged
        continue;
      }
      if (r.offset !== before) {
        await this.offsets.save(r.sub.name, r.offset).catch((err: unknown) => {
          this.opts.onError?.(err, r.sub.name, batch[0]!);
        });
        void this.truncate();
      }
    }
  }

  /** True once delivered; false when the subscriber was stopped while retrying. */
  private async deliver(r: Running<T>, e: T): Promise<boolean> {
    let delay = this.opts.backoffMs ?? 100;
    while (!r.stopped) {
      try {
        await withTimeout(r.sub.deliver(e), r.sub.timeoutMs ?? 30_000, r);
        return true;
      } catch (err) {
        if (r.stopped) return false;
        this.opts.onError?.(err, r.sub.name, e);
        await sleep(delay, r);
        delay = Math.min(delay * 2, this.opts.maxBackoffMs ?? 10_000);
      }
    }
    return false;
  }

  /**
   * Whether the subscriber's `flush` (if any) succeeded; after a failure, backs off first. Runs
   * on a stop too, so what a closing node delivered is kept (bounded by the timeout).
   */
  private async flushed(r: Running<T>, first: T): Promise<boolean> {
    if (!r.sub.flush) return true;
    try {
      await withTimeout(r.sub.flush(), r.sub.timeoutMs ?? 30_000, r);
      r.flushFailures = 0;
      return true;
    } catch (err) {
      if (r.stopped) return false;
      this.opts.onError?.(err, r.sub.name, first);
      const base = this.opts.backoffMs ?? 100;
      await sleep(Math.min(base * 2 ** r.flushFailures, this.opts.maxBackoffMs ?? 10_000), r);
      r.flushFailures++;
      return false;
    }
  }

  private async truncate(): Promise<void> {
    if (this.truncating || this.running.size === 0) return;
    this.truncating = true;
    try {
      const min = Math.min(...[...this.running.values()].map((r) => r.offset));
      await this.journal.truncate(min);
    } finally {
      this.truncating = false;
    }
  }
}

/** Sleeps, or returns early when the subscriber is stopped. */
function sleep(ms: number, r: { abort: (() => void) | undefined }): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    r.abort = () => {
      clearTimeout(t);
      resolve();
    };
  }).finally(() => {
    r.abort = undefined;
  });
}

async function withTimeout(
  p: void | Promise<void>,
  ms: number,
  r: { abort: (() => void) | undefined },
): Promise<void> {
  if (!(p instanceof Promise)) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      p,
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`subscriber timed out after ${ms} ms`)), ms);
        r.abort = () => reject(new Error('stopped'));
      }),
    ]);
  } finally {
    clearTimeout(timer);
    r.abort = undefined;
  }
}
