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
 * Repository names in a store, by walking `repositories/`: a directory is a repository when it
 * holds `_manifests/` or `_layers/`. Name components never start with `_`, so the walk is exact.
 * Unsorted.
 */
export async function listRepositories(store: ObjectStore): Promise<string[]> {
  const repos: string[] = [];
  const walk = async (prefix: string): Promise<void> => {
    const children: string[] = [];
    let isRepo = false;
    for (const p of await listChildPrefixes(store, prefix)) {
      if (p.slice(prefix.length).startsWith('_')) isRepo = true;
      else children.push(p);
    }
    if (isRepo) repos.push(prefix.slice(Layout.repositoriesRoot.length, -1));
    for (const c of children) await walk(c);
  };
  await walk(Layout.repositoriesRoot);
  return repos;
}
