import { OciError, parseDigest } from '@meridian/oci';
import { RepositoryLayout } from '@meridian/storage';
import { repoLock } from './blob-store';
import type { Registry } from './registry';
import { unknownRepository } from './repository-metadata';
import { translated } from './storage-errors';

/** What ACR answers for a deleted repository. */
export interface DeletedRepository {
  manifestsDeleted: string[];
  tagsDeleted: string[];
}

/**
 * Deletes a repository the way `DELETE /acr/v1/{name}` does (primary only): every manifest by
 * digest (through `ManifestStore.delete`, so locks, soft delete and events are a client's
 * delete), then any tag left, then (without soft delete) the layer links. Every lock is checked before anything is deleted: a repository
 * with one locked manifest or tag is refused whole (`403 DENIED`), never half deleted.
 */
export function deleteRepository(
  registry: Registry,
  repository: string,
): Promise<DeletedRepository> {
  return translated(async () => {
    const layout = new RepositoryLayout(registry.store);
    const [digests, tags] = await Promise.all([
      layout.listRevisions(repository),
      layout.listTags(repository),
    ]);
    if (digests.length === 0 && tags.length === 0) throw unknownRepository(repository);
    const records = new Map<string, string>();
    for (const t of tags) {
      const rec = await registry.tags.get(repository, t);
      if (rec) records.set(t, rec.digest);
    }
    const tagsOf = (digest: string) =>
      Promise.resolve([...records].filter(([, d]) => d === digest).map(([t]) => t));
    for (const d of digests)
      await registry.locks.assertManifestDeletable(repository, d, () => tagsOf(d));
    for (const [t, d] of records) await registry.locks.assertTagDeletable(repository, t, d);
    // Referrers (signatures, SBOMs) go before their subject, as a client would delete them.
    const subjects = new Set<string>();
    for (const d of digests) {
      const subject = await layout.readSubject(parseDigest(d)).catch(() => undefined);
      if (subject) subjects.add(subject.value);
    }
    const ordered = [
      ...digests.filter((d) => !subjects.has(d)),
      ...digests.filter((d) => subjects.has(d)),
    ];
    for (const d of ordered) await registry.manifests.delete(repository, d);
    for (const t of await layout.listTags(repository))
      await registry.manifests.delete(repository, t);
    // Its layer links too, so the repository leaves the catalog — unless soft delete keeps the
    // manifests in the recycle bin, whose restore needs them (ADR 0017). Decided under the
    // repository's lock (and, with peers, its claim in the store), as a purge removes: a push
    // that landed a manifest meanwhile keeps every link (garbage collection unlinks the unused
    // ones after its grace period), and one still on its way finds its layers gone and is
    // refused with MANIFEST_BLOB_UNKNOWN instead of landing without them.
    if (registry.manifests.softDeleteMs === undefined)
      await registry.guard.removing(
        repository,
        repoLock(repository),
        async (valid) => {
          if ((await layout.listRevisions(repository)).length > 0) return;
          for (const d of await layout.listLayers(repository)) {
            if (!valid()) return;
            await registry.blobs.delete(repository, d).catch(ignoreUnknown);
          }
        },
        undefined,
      );
    return { manifestsDeleted: ordered, tagsDeleted: tags };
  });
}

function ignoreUnknown(err: unknown): void {
  if (!(err instanceof OciError && err.code === 'BLOB_UNKNOWN')) throw err;
}
