import { Lanes, Progress } from './event-lanes';
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
   * it durable here. Throws (or rejects, or exceeds `timeoutMs`) to have everything delivered
   * since the saved offset delivered again after a backoff; so it must drop what it buffered
   * when it fails. Deliveries of other partitions may run while it does.
   */
  flush?: () => void | Promise<void>;
  /**
   * `partition` (the default): events of one partition (a repository) in commit order, one at
   * a time; partitions side by side, so a slow one holds back only itself (up to the
   * dispatcher's `window`). `global`: one at a time, in commit order across partitions.
   */
  order?: 'partition' | 'global';
  /** Partitions delivered at once, at most. Default 16. */
  concurrency?: number;
}

export interface EventDispatcherOptions<T> {
  /** Where acknowledged offsets live; in memory when absent. */
  offsetsDir?: string;
  /** First retry delay; doubles per failure up to `maxBackoffMs`. Default 100 ms. */
  backoffMs?: number;
  /** Default 10 000 ms. */
  maxBackoffMs?: number;
  /** Delivered entries between two offset writes at most. Default 256. */
  batch?: number;
  /**
   * How many entries past its acknowledged offset a subscriber may be given: how far other
   * partitions run ahead of a stuck one (and what a restart delivers again). Default 1024.
   */
  window?: number;
  /** The partition of an entry (the registry: its repository). Default: one for all. */
  partition?: (entry: T) => string;
  onError?: (err: unknown, subscriber: string, event: Sequenced) => void;
}

interface Running<T> {
  sub: DurableSubscriber<T>;
  /** Acknowledged: every entry up to it was delivered (and flushed); saved. */
  offset: number;
  stopped: boolean;
  /** Resolves the reader's wait (new entries, a delivery done, a stop). */
  wake: (() => void) | undefined;
  /** Abandons the deliveries and backoffs of the current pass (on stop). */
  abort: AbortController;
  /** Consecutive failed flushes (the backoff before delivering again). */
  flushFailures: number;
  loop: Promise<void>;
}

/** Offsets are saved at least this often while deliveries go on (ms). */
const SAVE_EVERY_MS = 200;

/**
 * Delivers journal entries to each subscriber on its own loop, at least once, in commit order
 * per partition (see `DurableSubscriber.order`): a subscriber's offset is the highest sequence
 * below which everything was delivered, saved as it advances, and on start it resumes after its
 * saved offset. A failing or hanging delivery is retried with backoff and holds back only its
 * partition of its subscriber. Segments every subscriber acknowledged are removed.
 */
export class EventDispatcher<T extends Sequenced> {
  private readonly offsets: OffsetStore;
  private readonly running = new Map<string, Running<T>>();
  private readonly unlisten: () => void;
  private truncating = false;

  constructor(
    private readonly journal: EventJournal<T>,
    private readonly opts: EventDispatcherOptions<T> = {},
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
      abort: new AbortController(),
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
    r.abort.abort();
    r.wake?.();
    this.running.delete(r.sub.name);
    await r.loop;
  }

  private async run(r: Running<T>): Promise<void> {
    while (!r.stopped) {
      if (await this.pass(r)) continue;
      // A flush failed: back off, then deliver again from the acknowledged offset.
      const base = this.opts.backoffMs ?? 100;
      const delay = Math.min(base * 2 ** r.flushFailures, this.opts.maxBackoffMs ?? 10_000);
      r.flushFailures++;
      await sleep(delay, r.abort.signal);
    }
  }

  /**
   * Delivers from the acknowledged offset on until the subscriber stops (true) or a flush fails
   * (false); on the way out, deliveries in flight are abandoned (on a failure) or awaited.
   */
  private async pass(r: Running<T>): Promise<boolean> {
    const batchSize = this.opts.batch ?? 256;
    const window = Math.max(this.opts.window ?? 1024, 1);
    const pass = new AbortController();
    const stopOrFail = AbortSignal.any([pass.signal, r.abort.signal]);
    const progress = new Progress(r.offset);
    const global = r.sub.order === 'global' || !this.opts.partition;
    const lanes = new Lanes<T>({
      key: global ? () => '' : this.opts.partition!,
      concurrency: global ? 1 : Math.max(r.sub.concurrency ?? 16, 1),
      deliver: (e) => this.deliver(r, e, stopOrFail),
      delivered: (sequence) => {
        progress.complete(sequence);
        r.wake?.();
      },
    });
    let read = r.offset;
    let saved = Date.now();
    let ok = true;
    try {
      while (!r.stopped) {
        const room = window - (read - r.offset);
        if (room > 0 && this.journal.last > read) {
          for (const e of await this.journal.read(read, Math.min(batchSize, room))) {
            progress.add(e.sequence);
            read = e.sequence;
            lanes.push(e);
          }
        }
        const upTo = progress.contiguous;
        const due =
          upTo === read || upTo - r.offset >= batchSize || Date.now() - saved >= SAVE_EVERY_MS;
        if (upTo > r.offset && due) {
          if (!(await this.acknowledge(r, upTo, r.abort.signal))) return (ok = false);
          saved = Date.now();
          continue;
        }
        const more = () =>
          r.stopped ||
          progress.contiguous > upTo ||
          (this.journal.last > read && read - r.offset < window);
        await this.waitFor(r, more, upTo > r.offset ? SAVE_EVERY_MS : undefined);
      }
      return true;
    } finally {
      if (!ok) pass.abort();
      await lanes.close();
      // Stopping: keep what was delivered (a failed pass keeps nothing past the offset).
      if (ok && progress.contiguous > r.offset) await this.acknowledge(r, progress.contiguous);
    }
  }

  /**
   * Flushes the subscriber, then saves `upTo` as its offset; false when the flush failed or
   * `signal` aborted it. The last one, on a stop, has no signal: what was delivered is kept
   * (bounded by the timeout).
   */
  private async acknowledge(r: Running<T>, upTo: number, signal?: AbortSignal): Promise<boolean> {
    if (r.sub.flush) {
      try {
        await withTimeout(r.sub.flush(), r.sub.timeoutMs ?? 30_000, signal);
        r.flushFailures = 0;
      } catch (err) {
        if (!signal?.aborted) this.opts.onError?.(err, r.sub.name, { sequence: upTo });
        return false;
      }
    }
    r.offset = upTo;
    await this.offsets.save(r.sub.name, upTo).catch((err: unknown) => {
      this.opts.onError?.(err, r.sub.name, { sequence: upTo });
    });
    void this.truncate();
    return true;
  }

  /** Waits for `ready`, a wake-up, or `ms`. */
  private waitFor(r: Running<T>, ready: () => boolean, ms?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        if (r.wake === done) r.wake = undefined;
        resolve();
      };
      r.wake = done;
      if (ms !== undefined) timer = setTimeout(done, ms);
      if (ready()) done();
    });
  }

  /** True once delivered; false when abandoned (a stop, or a failed pass) while retrying. */
  private async deliver(r: Running<T>, e: T, signal: AbortSignal): Promise<boolean> {
    let delay = this.opts.backoffMs ?? 100;
    while (!signal.aborted) {
      try {
        await withTimeout(r.sub.deliver(e), r.sub.timeoutMs ?? 30_000, signal);
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        this.opts.onError?.(err, r.sub.name, e);
        await sleep(delay, signal);
        delay = Math.min(delay * 2, this.opts.maxBackoffMs ?? 10_000);
      }
    }
    return false;
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

/** Sleeps, or returns early when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** Awaits `p` for at most `ms`; rejects at once when `signal` aborts. */
async function withTimeout(
  p: void | Promise<void>,
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  if (!(p instanceof Promise)) return;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      p,
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`subscriber timed out after ${ms} ms`)), ms);
        onAbort = () => reject(new Error('stopped'));
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
