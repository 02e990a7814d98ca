import {
  emptyUsage,
  mergeUsage,
  UsageRecords,
  type ObjectStore,
  type UsageRecord,
} from '@meridian/storage';

export interface PullRecorderOptions {
  /** How often pulls are written to the region's storage. Default 30 000 ms. */
  flushIntervalMs?: number;
  /** Distinct (repository, tag or manifest) entries kept between flushes before one is forced. Default 50 000. */
  maxPending?: number;
  onError?: (err: unknown) => void;
}

/**
 * Counts pulls off the request path: a pull is a map update in memory; every
 * `flushIntervalMs` the counts are merged into the region's `_usage/<repo>/_pulls` records (one
 * read and one write per repository pulled since). A flush that fails keeps its counts for the
 * next one; `close` flushes what is left.
 */
export class PullRecorder {
  private pending = new Map<string, UsageRecord>();
  private entries = 0;
  private flushing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly records: UsageRecords;
  private readonly maxPending: number;

  constructor(
    store: ObjectStore,
    private readonly opts: PullRecorderOptions = {},
  ) {
    this.records = new UsageRecords(store);
    this.maxPending = opts.maxPending ?? 50_000;
    this.timer = setInterval(() => void this.flush(), opts.flushIntervalMs ?? 30_000);
    this.timer.unref();
  }

  /** A manifest pulled by `tag` (undefined: by digest). Synchronous and O(1). */
  record(repository: string, tag: string | undefined, digest: string, at = Date.now()): void {
    let rec = this.pending.get(repository);
    if (!rec) {
      rec = emptyUsage();
      this.pending.set(repository, rec);
    }
    this.bump(rec.manifests, digest, at);
    if (tag !== undefined) this.bump(rec.tags, tag, at);
    if (this.entries >= this.maxPending) void this.flush();
  }

  private bump(
    into: Record<string, { lastPulledAt: number; count: number }>,
    k: string,
    at: number,
  ) {
    const cur = into[k];
    if (cur) {
      cur.count++;
      if (at > cur.lastPulledAt) cur.lastPulledAt = at;
    } else {
      into[k] = { lastPulledAt: at, count: 1 };
      this.entries++;
    }
  }

  /** Writes the pending counts (one flush at a time). */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    this.entries = 0;
    for (const [repository, rec] of batch) {
      try {
        await this.records.add(repository, rec);
      } catch (err) {
        this.opts.onError?.(err);
        // Kept for the next flush, merged with what came since.
        const again = this.pending.get(repository);
        this.pending.set(repository, again ? mergeUsage(rec, again) : rec);
        this.entries += Object.keys(rec.manifests).length + Object.keys(rec.tags).length;
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
