import type { Sequenced } from './event-journal';

export interface LanesOptions<T> {
  /** The lane of an entry: entries of one lane are delivered one at a time, in push order. */
  key: (entry: T) => string;
  /** Lanes delivering at once, at most. */
  concurrency: number;
  /** Delivers one entry; false when it was abandoned (the lanes are being torn down). */
  deliver: (entry: T) => Promise<boolean>;
  /** Called once per entry delivered. */
  delivered: (sequence: number) => void;
}

/**
 * Per-key delivery lanes: entries with the same key are delivered one after another in the
 * order they were pushed; different keys run side by side, up to `concurrency` at once. A lane
 * gives up its slot after each entry (and queues again behind the others), so a lane with a
 * long backlog, or one that is retrying, takes one slot and never more.
 */
export class Lanes<T extends Sequenced> {
  private readonly queues = new Map<string, T[]>();
  /** Keys with entries waiting for a slot, first come first served. */
  private readonly ready: string[] = [];
  private readonly waiting = new Set<string>();
  private readonly busy = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: LanesOptions<T>) {}

  /** Entries pushed and not yet delivered (or abandoned). */
  get size(): number {
    let n = this.busy.size;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  push(entry: T): void {
    const key = this.opts.key(entry);
    const q = this.queues.get(key);
    if (q) q.push(entry);
    else this.queues.set(key, [entry]);
    this.schedule(key);
    this.pump();
  }

  /** Starts nothing more; resolves once every delivery in flight has settled. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  private schedule(key: string): void {
    if (this.busy.has(key) || this.waiting.has(key) || !this.queues.get(key)?.length) return;
    this.waiting.add(key);
    this.ready.push(key);
  }

  private pump(): void {
    while (!this.closed && this.busy.size < this.opts.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      this.waiting.delete(key);
      this.start(key);
    }
  }

  private start(key: string): void {
    const q = this.queues.get(key)!;
    const entry = q.shift()!;
    if (q.length === 0) this.queues.delete(key);
    this.busy.add(key);
    const p = (async () => {
      if (await this.opts.deliver(entry)) this.opts.delivered(entry.sequence);
    })().finally(() => {
      this.inflight.delete(p);
      this.busy.delete(key);
      this.schedule(key);
      this.pump();
    });
    this.inflight.add(p);
  }
}

/**
 * Which entries are delivered, as the highest sequence below which all are (`contiguous`): the
 * offset a subscriber may acknowledge while later entries of other lanes are already through.
 */
export class Progress {
  /** Sequences pushed and not yet part of the contiguous prefix, ascending. */
  private readonly open: number[] = [];
  private readonly done = new Set<number>();

  constructor(public contiguous: number) {}

  add(sequence: number): void {
    this.open.push(sequence);
  }

  complete(sequence: number): void {
    this.done.add(sequence);
    while (this.open.length > 0 && this.done.has(this.open[0]!)) {
      const s = this.open.shift()!;
      this.done.delete(s);
      this.contiguous = s;
    }
  }
}
