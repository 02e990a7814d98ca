import { Layout } from './layout';
import type { ObjectInfo, ObjectStore } from './object-store';

/** Every key under `prefix`, following cursors. */
export async function listAllKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, { cursor });
    for (const o of page.objects) out.push(o.key);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/** Every object under `prefix` with its size and modification time, following cursors. */
export async function listAllObjects(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, { cursor });
    out.push(...page.objects);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/** Every common prefix one level under `prefix` (delimiter `/`), following cursors. */
export async function listChildPrefixes(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, { delimiter: '/', cursor });
    out.push(...page.prefixes);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/**
 * Whether `repository` holds state of its own (a `_layers`, `_manifests`, `_locks`… part): what
 * makes a directory a repository here and in the catalog. A repository nested under the name
 * (`app/sub` under `app`) does not make `app` exist: its keys share the prefix, nothing more.
 */
export async function hasOwnState(store: ObjectStore, repository: string): Promise<boolean> {
  const prefix = Layout.repository(repository);
  const children = await listChildPrefixes(store, prefix);
  return children.some((p) => p.startsWith('_', prefix.length));
}

/** A repository directory and the kinds of state under it (`_layers`, `_manifests`, `_locks`…). */
export interface RepositoryEntry {
  name: string;
  parts: string[];
}

/**
 * Repository names in a store, by walking `repositories/`: a directory is a repository when it
 * holds `_manifests/` or `_layers/` (or other `_` state, such as `_locks/`). Name components
 * never start with `_`, so the walk is exact. Unsorted.
 */
export async function listRepositories(store: ObjectStore): Promise<string[]> {
  return (await listRepositoryEntries(store)).map((e) => e.name);
}

/** Like `listRepositories`, with the `_` children of each repository (no extra requests). */
export async function listRepositoryEntries(store: ObjectStore): Promise<RepositoryEntry[]> {
  const repos: RepositoryEntry[] = [];
  const walk = async (prefix: string): Promise<void> => {
    const children: string[] = [];
    const parts: string[] = [];
    for (const p of await listChildPrefixes(store, prefix)) {
      const child = p.slice(prefix.length, -1);
      if (child.startsWith('_')) parts.push(child);
      else children.push(p);
    }
    if (parts.length > 0)
      repos.push({ name: prefix.slice(Layout.repositoriesRoot.length, -1), parts });
    for (const c of children) await walk(c);
  };
  await walk(Layout.repositoriesRoot);
  return repos;
}
