import { RepositoryLayout, lockRef, type ObjectStore } from '@meridian/storage';

/** A repository's replicated state: key → content fingerprint (tag records by value). */
export interface RepositoryInventory {
  tags: Map<string, string>;
  revisions: Set<string>;
  layers: Set<string>;
  referrers: Set<string>;
  /** Lock records: `lockRef` → seq. */
  locks: Map<string, number>;
}

export async function repositoryInventory(
  store: ObjectStore,
  repo: string,
): Promise<RepositoryInventory> {
  const layout = new RepositoryLayout(store);
  const inv: RepositoryInventory = {
    tags: new Map(),
    revisions: new Set(),
    layers: new Set(),
    referrers: new Set(),
    locks: new Map(),
  };
  await Promise.all(
    (await layout.scan(repo)).map(async (k) => {
      switch (k.kind) {
        case 'tag': {
          const rec = await layout.readTag(repo, k.tag);
          if (rec) inv.tags.set(k.tag, `${rec.digest}@${rec.seq}`);
          return;
        }
        case 'revision':
          inv.revisions.add(k.digest);
          return;
        case 'layer':
          inv.layers.add(k.digest);
          return;
        case 'referrer':
          inv.referrers.add(k.digest);
          return;
        case 'lock': {
          const rec = await layout.readLock(repo, k.target);
          if (rec) inv.locks.set(lockRef(k.target), rec.seq);
          return;
        }
      }
    }),
  );
  return inv;
}
