import { OciError } from '@meridian/oci';
import {
  RepositoryLayout,
  tagEntry,
  type ObjectStore,
  type PutEntry,
  type TagRecord,
} from '@meridian/storage';
import type { RegistryEvents } from './events';
import { NO_LOCKS } from './lock-rules';
import { LockStore } from './lock-store';
import type { MetadataCache } from './metadata-cache';
import { translated } from './storage-errors';

/** Tags: `current` records with a sequence number that only grows. */
export class TagStore {
  private lastSeq = 0;
  private readonly layout: RepositoryLayout;

  constructor(
    store: ObjectStore,
    private readonly cache: MetadataCache,
    private readonly events: RegistryEvents,
    private readonly locks: LockStore = new LockStore(store, cache, events),
  ) {
    this.layout = new RepositoryLayout(store);
  }

  async get(repository: string, tag: string): Promise<TagRecord | undefined> {
    const key = tagKey(repository, tag);
    if (this.cache.enabled) {
      const hit = this.cache.tags.get(key);
      if (hit !== undefined) return hit || undefined;
    }
    const rec = await this.layout.readTag(repository, tag);
    this.cache.tags.set(key, rec ?? false);
    return rec;
  }

  /**
   * The tag's record when this node's cache holds it (see `MetadataCache.enabled`), `false` when
   * the cache knows it is absent, undefined when only storage can say. Never reads storage.
   */
  cached(repository: string, tag: string): TagRecord | false | undefined {
    return this.cache.enabled ? this.cache.tags.get(tagKey(repository, tag)) : undefined;
  }

  /**
   * The record that points `tag` at `digest` (its `seq` greater than any this node issued) and
   * the write that stores it, for the caller to write with the manifest; then call `stored`.
   */
  prepare(
    repository: string,
    tag: string,
    digest: string,
  ): { rec: TagRecord; entry: PutEntry & { body: Buffer } } {
    const now = Date.now();
    const seq = Math.max(now * 1000, this.lastSeq + 1);
    this.lastSeq = seq;
    const rec: TagRecord = { digest, seq, updatedAt: new Date(now).toISOString() };
    return { rec, entry: tagEntry(repository, tag, rec) };
  }

  /**
   * After a prepared record is written: caches and announces it. `previous` is the digest the
   * tag pointed at before (read before the write), for untagged retention.
   */
  async stored(repository: string, tag: string, rec: TagRecord, previous?: string): Promise<void> {
    this.cache.tags.set(tagKey(repository, tag), rec);
    this.cache.forgetRepository(repository);
    await this.events.emit({
      type: 'tagMoved',
      repository,
      tag,
      digest: rec.digest,
      seq: rec.seq,
      ...(previous !== undefined && previous !== rec.digest && { previous }),
      at: Date.parse(rec.updatedAt),
    });
  }

  /** Deletes a tag; false when it did not exist. */
  async delete(repository: string, tag: string): Promise<boolean> {
    const before = await this.get(repository, tag).catch(() => undefined);
    if (!(await this.layout.deleteTag(repository, tag))) return false;
    this.cache.tags.set(tagKey(repository, tag), false);
    this.cache.forgetRepository(repository);
    await this.events.emit({
      type: 'tagDeleted',
      repository,
      tag,
      ...(before && { digest: before.digest }),
      at: Date.now(),
    });
    return true;
  }

  /** The tags that point at `digest` now. */
  async pointingAt(repository: string, digest: string): Promise<string[]> {
    const out: string[] = [];
    for (const tag of await this.all(repository))
      if ((await this.get(repository, tag))?.digest === digest) out.push(tag);
    return out;
  }

  async deleteTagsPointingAt(repository: string, digest: string): Promise<void> {
    const tags = await this.all(repository);
    for (const tag of tags) {
      // From the store, not the cache: a push that just moved the tag elsewhere may not have
      // refreshed the cache yet, and its tag must not go with this manifest.
      const rec = await this.layout.readTag(repository, tag);
      if (rec?.digest === digest) await this.delete(repository, tag);
    }
  }

  /**
   * One page of tags in lexical order after `last`, at most `n` (all when undefined).
   * Throws `NAME_UNKNOWN` for a repository that does not exist.
   */
  list(repository: string, n?: number, last?: string): Promise<{ tags: string[]; more: boolean }> {
    return translated(async () => {
      const all = await this.listable(repository, await this.all(repository));
      if (all.length === 0 && !(await this.repositoryExists(repository)))
        throw new OciError('NAME_UNKNOWN', `repository name not known to registry: ${repository}`, {
          name: repository,
        });
      const start = last === undefined ? 0 : upperBound(all, last);
      const end = n === undefined ? all.length : Math.min(all.length, start + n);
      return { tags: all.slice(start, end), more: end < all.length };
    });
  }

  /** Every tag of a repository, sorted (cached for the metadata TTL). */
  async all(repository: string): Promise<string[]> {
    if (this.cache.enabled) {
      const hit = this.cache.tagLists.get(repository);
      if (hit) return hit;
    }
    const tags = await this.layout.listTags(repository);
    this.cache.tagLists.set(repository, tags);
    return tags;
  }

  /** The tags lists show: without those a lock hides (`listEnabled=false`, ADR 0015). */
  private async listable(repository: string, tags: string[]): Promise<string[]> {
    const locks = await this.locks.of(repository);
    if (locks === NO_LOCKS) return tags;
    const byManifest = [...locks.manifests.values()].some((r) => r.listEnabled === false);
    const out: string[] = [];
    for (const tag of tags) {
      const digest = byManifest ? (await this.get(repository, tag))?.digest : undefined;
      if (this.locks.listable(locks, tag, digest)) out.push(tag);
    }
    return out;
  }

  private repositoryExists(repository: string): Promise<boolean> {
    return this.layout.repositoryExists(repository);
  }
}

function tagKey(repository: string, tag: string): string {
  return `${repository}:${tag}`;
}

export function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Index of the first element greater than `x` in sorted `arr`. */
export function upperBound(arr: string[], x: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
