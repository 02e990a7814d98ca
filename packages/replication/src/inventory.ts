import { Layout, listAllKeys, readJson, type ObjectStore, type TagRecord } from '@meridian/storage';

/** A repository's replicated state: key → content fingerprint (tag records by value). */
export interface RepositoryInventory {
  tags: Map<string, string>;
  revisions: Set<string>;
  layers: Set<string>;
  referrers: Set<string>;
}

export async function repositoryInventory(
  store: ObjectStore,
  repo: string,
): Promise<RepositoryInventory> {
  const root = Layout.repository(repo);
  const keys = await listAllKeys(store, root);
  const inv: RepositoryInventory = {
    tags: new Map(),
    revisions: new Set(),
    layers: new Set(),
    referrers: new Set(),
  };
  await Promise.all(
    keys.map(async (key) => {
      const rest = key.slice(root.length);
      if (rest.startsWith('_manifests/tags/') && rest.endsWith('/current')) {
        const tag = rest.slice('_manifests/tags/'.length, -'/current'.length);
        const rec = await readJson<TagRecord>(store, key);
        if (rec) inv.tags.set(tag, `${rec.digest}@${rec.seq}`);
      } else if (rest.startsWith('_manifests/revisions/')) {
        const [alg, hex] = rest.slice('_manifests/revisions/'.length).split('/');
        inv.revisions.add(`${alg}:${hex}`);
      } else if (rest.startsWith('_layers/')) {
        const [alg, hex] = rest.slice('_layers/'.length).split('/');
        inv.layers.add(`${alg}:${hex}`);
      } else if (rest.startsWith('_referrers/')) {
        const last = rest.split('/').pop() ?? '';
        inv.referrers.add(last.replace('-', ':'));
      }
    }),
  );
  return inv;
}
