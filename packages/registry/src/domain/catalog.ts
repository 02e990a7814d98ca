import { Layout, type ObjectStore } from '@meridian/storage';
import type { MetadataCache } from './metadata-cache';
import { compareBytes, upperBound } from './tag-store';
import { translated } from './storage-errors';

/**
 * The repository catalog, found by walking `repositories/`: a directory is a repository when it
 * holds `_manifests/` or `_layers/`. Name components never start with `_`, so the walk is exact.
 */
export class Catalog {
  constructor(
    private readonly store: ObjectStore,
    private readonly cache: MetadataCache,
  ) {}

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
    const repos: string[] = [];
    await this.walk(Layout.repositoriesRoot, repos);
    repos.sort(compareBytes);
    this.cache.tagLists.set('\0catalog', repos);
    return repos;
  }

  private async walk(prefix: string, out: string[]): Promise<void> {
    const children: string[] = [];
    let isRepo = false;
    let cursor: string | undefined;
    do {
      const page = await this.store.list(prefix, { delimiter: '/', cursor });
      for (const p of page.prefixes) {
        const seg = p.slice(prefix.length, -1);
        if (seg.startsWith('_')) isRepo = true;
        else children.push(p);
      }
      cursor = page.cursor;
    } while (cursor);
    if (isRepo) out.push(prefix.slice(Layout.repositoriesRoot.length, -1));
    for (const c of children) await this.walk(c, out);
  }
}
