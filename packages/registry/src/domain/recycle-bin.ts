import { OciError, parseDigest, parseManifest } from '@meridian/oci';
import { RepositoryLayout, type ObjectStore, type TombstoneRecord } from '@meridian/storage';
import type { RegistryEvents } from './events';
import type { ManifestStore } from './manifest-store';
import { translated } from './storage-errors';

export interface RestoreResult {
  /** Manifests brought back (children and referrers with their parent), in the order restored. */
  restored: { digest: string; tags: string[] }[];
}

const notDeleted = (repository: string, digest: string): OciError =>
  new OciError(
    'MANIFEST_UNKNOWN',
    `no soft-deleted manifest ${digest.slice(0, 80)} in ${repository.slice(0, 200)}`,
    undefined,
    404,
  );

/**
 * The recycle bin of soft delete (ADR 0017): lists tombstones, restores a manifest with its tags
 * (an index with its soft-deleted children, and the referrers deleted with it), and purges
 * tombstones for good (expired ones on GC's schedule, or on demand). Restores go through
 * `ManifestStore.put`, so visibility order, locks and events are a push's.
 */
export class RecycleBin {
  private readonly layout: RepositoryLayout;

  constructor(
    store: ObjectStore,
    private readonly manifests: ManifestStore,
    private readonly events: RegistryEvents,
  ) {
    this.layout = new RepositoryLayout(store);
  }

  /** Soft-deleted manifests of a repository, newest first. */
  list(repository: string): Promise<TombstoneRecord[]> {
    return translated(async () =>
      (await this.layout.listTombstones(repository)).sort((a, b) =>
        b.deletedAt.localeCompare(a.deletedAt),
      ),
    );
  }

  /** Restores `digest` with its tags (or `tags` when given). Throws `MANIFEST_UNKNOWN` (404). */
  restore(repository: string, digest: string, tags?: string[]): Promise<RestoreResult> {
    return translated(async () => {
      const d = parseDigest(digest);
      const rec = await this.layout.readTombstone(repository, d);
      if (!rec) throw notDeleted(repository, digest);
      const result: RestoreResult = { restored: [] };
      await this.restoreOne(repository, rec, tags ?? rec.tags, result, 0);
      // What referred to it and was deleted too comes back with it.
      for (const t of await this.layout.listTombstones(repository)) {
        const bytes = await this.layout.readBlob(parseDigest(t.digest)).catch(() => undefined);
        if (!bytes) continue;
        const subject = safeParse(bytes, t.mediaType)?.subject?.digest;
        if (subject === rec.digest) await this.restoreOne(repository, t, t.tags, result, 1);
      }
      return result;
    });
  }

  private async restoreOne(
    repository: string,
    rec: TombstoneRecord,
    tags: string[],
    result: RestoreResult,
    depth: number,
  ): Promise<void> {
    if (depth > 8) return;
    const d = parseDigest(rec.digest);
    const bytes = await this.layout.readBlob(d);
    const parsed = safeParse(bytes, rec.mediaType);
    // An index's children first (those in the bin), so the index's references hold.
    for (const c of parsed?.children ?? []) {
      const child = await this.layout.readTombstone(repository, parseDigest(c.digest));
      if (child) await this.restoreOne(repository, child, child.tags, result, depth + 1);
    }
    await this.manifests.put(repository, rec.digest, bytes, rec.mediaType);
    for (const tag of tags) await this.manifests.put(repository, tag, bytes, rec.mediaType);
    await this.layout.deleteTombstone(repository, d);
    // Now that the tombstone is gone: regions drop theirs, webhooks fire `restore`.
    await this.events.emit({
      type: 'manifestRestored',
      repository,
      digest: rec.digest,
      at: Date.now(),
    });
    result.restored.push({ digest: rec.digest, tags });
  }

  /**
   * Purges tombstones for good: of one repository (one digest, or all) or, with no repository,
   * every expired one of every repository. Each purge is a `manifestDeleted` event again, so GC
   * notes what it may now free and replicas drop their copy of the tombstone.
   */
  purge(opts: { repository?: string; digest?: string; now?: number } = {}): Promise<number> {
    return translated(async () => {
      const now = opts.now ?? Date.now();
      const repos = opts.repository ? [opts.repository] : await this.layout.listRepositories();
      let purged = 0;
      for (const repository of repos)
        for (const t of await this.layout.listTombstones(repository)) {
          if (
            opts.digest !== undefined
              ? t.digest !== opts.digest
              : opts.repository === undefined && Date.parse(t.expiresAt) > now
          )
            continue;
          await this.layout.deleteTombstone(repository, parseDigest(t.digest));
          await this.events.emit({
            type: 'manifestDeleted',
            repository,
            digest: t.digest,
            at: Date.now(),
          });
          purged++;
        }
      if (opts.digest !== undefined && purged === 0)
        throw notDeleted(opts.repository ?? '', opts.digest);
      return purged;
    });
  }
}

function safeParse(bytes: Buffer, mediaType: string): ReturnType<typeof parseManifest> | undefined {
  try {
    return parseManifest(bytes, mediaType);
  } catch {
    return undefined;
  }
}
