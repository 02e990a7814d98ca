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
    this.enabled = ttl > 0;
  }

  readonly enabled: boolean;

  forgetRepository(repository: string): void {
    this.tagLists.delete(repository);
  }
}
