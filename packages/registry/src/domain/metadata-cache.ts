import { LRUCache } from 'lru-cache';
import type { RevisionRecord, TagRecord } from '@meridian/storage';
import type { RepositoryLocks } from './lock-rules';

export interface MetadataCacheOptions {
  /**
   * How long a tag or revision lookup is trusted before storage is read again. Writes through
   * this node invalidate at once; the TTL bounds staleness when several nodes share storage.
   * Default 1000 ms; 0 disables caching of mutable lookups.
   */
  ttlMs?: number;
  /** Memory for immutable manifest bodies, in bytes. Default 64 MiB. */
  maxContentBytes?: number;
}

/** Positive and negative lookups so hot manifest reads do not touch storage. */
export class MetadataCache {
  readonly tags: LRUCache<string, TagRecord | false>;
  readonly revisions: LRUCache<string, RevisionRecord | false>;
  /** Manifest bytes by digest: immutable, so never expire. */
  readonly content: LRUCache<string, Buffer>;
  readonly tagLists: LRUCache<string, string[]>;
  /** Each repository's lock records (ADR 0015), by repository. */
  readonly locks: LRUCache<string, RepositoryLocks>;

  constructor(opts: MetadataCacheOptions = {}) {
    const ttl = opts.ttlMs ?? 1000;
    const mutable = { max: 100_000, ttl: Math.max(ttl, 1), ttlAutopurge: false } as const;
    this.tags = new LRUCache(mutable);
    this.revisions = new LRUCache(mutable);
    this.tagLists = new LRUCache({ max: 10_000, ttl: Math.max(ttl, 1) });
    this.locks = new LRUCache({ max: 10_000, ttl: Math.max(ttl, 1) });
    this.content = new LRUCache({
      maxSize: opts.maxContentBytes ?? 64 * 1024 * 1024,
      sizeCalculation: (b) => b.length || 1,
    });
    this.ttlEnabled = ttl > 0;
  }

  private readonly ttlEnabled: boolean;
  private exclusive: () => boolean = () => true;
  private wasExclusive = true;

  /**
   * Whether mutable lookups (tags, tag lists, revisions, locks) may be cached between requests:
   * only while this node is the only one writing its region's storage (`setExclusive`) — another
   * node's tag move would otherwise be served stale from here. Switching either way forgets
   * every mutable entry.
   */
  get enabled(): boolean {
    if (!this.ttlEnabled) return false;
    const now = this.exclusive();
    if (now !== this.wasExclusive) {
      this.wasExclusive = now;
      this.clearMutable();
    }
    return now;
  }

  /** How the node knows it is alone in its region (e.g. `RegionNodes.alone`). */
  setExclusive(check: () => boolean): void {
    this.exclusive = check;
    void this.enabled;
  }

  private clearMutable(): void {
    this.tags.clear();
    this.revisions.clear();
    this.tagLists.clear();
    this.locks.clear();
  }

  forgetRepository(repository: string): void {
    this.tagLists.delete(repository);
  }
}
