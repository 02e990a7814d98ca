import { RepositoryLayout, type ObjectStore } from '@meridian/storage';
import type { LockStore } from './lock-store';
import type { MetadataCache } from './metadata-cache';
import { compareBytes, upperBound } from './tag-store';
import { translated } from './storage-errors';

/** The repository catalog (a walk of `repositories/`, cached for the metadata TTL). */
export class Catalog {
  private readonly layout: RepositoryLayout;

  constructor(
    store: ObjectStore,
    private readonly cache: MetadataCache,
    private readonly locks?: LockStore,
  ) {
    this.layout = new RepositoryLayout(store);
  }

  list(n?: number, last?: string): Promise<{ repositories: string[]; more: boolean }> {
    return translated(async () => {
      const all = await this.all();
      const start = last === undefined ? 0 : upperBound(all, last);
      const end = n === undefined ? all.length : Math.min(all.length, start + n);
      return { repositories: all.slice(start, end), more: end < all.length };
    });
  }

  async all(): Promise<string[]> {
    const cached = this.cache.enabled ? this.cache.tagLists.get('\0catalog') : undefined;
    if (cached) return cached;
    // A repository with locks is listed unless its lock says `listEnabled=false` (ADR 0015); one
    // that holds nothing but locks (set before its first push) is not a repository yet.
    const repos: string[] = [];
    for (const e of await this.layout.listRepositoryEntries()) {
      if (!e.parts.includes('_locks') || !this.locks) repos.push(e.name);
      else if (
        e.parts.length > 1 &&
        (await this.locks.of(e.name)).repository?.listEnabled !== false
      )
        repos.push(e.name);
    }
    repos.sort(compareBytes);
    this.cache.tagLists.set('\0catalog', repos);
    return repos;
  }
}
