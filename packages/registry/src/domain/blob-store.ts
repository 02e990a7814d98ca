import { OciError, parseDigest, type Digest } from '@meridian/oci';
import {
  InvalidRangeError,
  Layout,
  RepositoryLayout,
  exists,
  layerLinkEntry,
  isNotFound,
  type GetResult,
  type ByteRange,
  type ObjectStore,
} from '@meridian/storage';
import { resolveRange, type ResolvedRange } from './byte-range';
import { ContentGuard } from './content-guard';
import type { RegistryEvents } from './events';
import { LockStore } from './lock-store';
import { MetadataCache } from './metadata-cache';
import { translated } from './storage-errors';

/** How references protect content from garbage collection (ADR 0012). */
export interface ReferencePolicy {
  guard: ContentGuard;
  /**
   * A layer link older than this is rewritten when a client asks about the blob (`HEAD`) or a
   * manifest references it, so the link stays out of GC for another grace period. Undefined on
   * a replica (its links follow the primary's).
   */
  touchAfterMs?: number;
}

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Repository-scoped blobs: a repository may serve a blob only through its own link. */
export class BlobStore {
  private readonly layout: RepositoryLayout;

  readonly guard: ContentGuard;

  constructor(
    private readonly store: ObjectStore,
    private readonly events: RegistryEvents,
    readonly references: ReferencePolicy = { guard: new ContentGuard() },
    /** What locks allow (ADR 0015): reads, deletes and uploads of a locked repository. */
    readonly repositoryLocks: LockStore = new LockStore(
      store,
      new MetadataCache({ ttlMs: 0 }),
      events,
    ),
  ) {
    this.layout = new RepositoryLayout(store);
    this.guard = references.guard;
  }

  /** Size of a blob this repository may serve. Throws `BLOB_UNKNOWN`. */
  stat(repository: string, digest: string): Promise<BlobInfo> {
    return translated(async () => {
      const d = parseDigest(digest);
      await this.repositoryLocks.assertReadable(repository);
      // The bytes first: a push asks about blobs that are mostly nowhere yet, answered by one
      // lookup; then the repository's link (a layer, or a manifest fetched as a blob).
      const info = await this.store.head(Layout.blobData(d)).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (!info) throw blobUnknown(d.value);
      const link = await this.layout.layerInfo(repository, d);
      if (!link && !(await this.layout.hasRevision(repository, d))) throw blobUnknown(d.value);
      // A client that asks about a blob may skip uploading it: its link must outlive the push.
      // (GC may unlink it just before: then the client is told to upload it.)
      if (link && this.isStale(link.modified) && !(await this.confirm(repository, d)))
        throw blobUnknown(d.value);
      return { digest: d.value, size: info.size };
    });
  }

  /**
   * A `GET`: the blob, or the part of it an HTTP `Range` header asks for (see `resolveRange`).
   * Throws `BLOB_UNKNOWN`, or 416 with the blob size for a range it cannot satisfy.
   */
  async read(
    repository: string,
    digest: string,
    rangeHeader?: string,
  ): Promise<GetResult & { digest: string; range?: ResolvedRange }> {
    if (rangeHeader === undefined) return this.open(repository, digest);
    const { size } = await this.stat(repository, digest);
    const range = resolveRange(rangeHeader, size);
    return { ...(await this.open(repository, digest, range)), range };
  }

  /**
   * Opens a blob (or a range of it, as `resolveRange` gives).
   * Throws `BLOB_UNKNOWN`, or 416 (`SIZE_INVALID`) for a range past the end.
   */
  open(
    repository: string,
    digest: string,
    range?: ByteRange,
  ): Promise<GetResult & { digest: string }> {
    return translated(async () => {
      const d = parseDigest(digest);
      await this.repositoryLocks.assertReadable(repository);
      await this.assertLinked(repository, d);
      try {
        const r = await this.store.get(Layout.blobData(d), range);
        return { ...r, digest: d.value };
      } catch (err) {
        if (isNotFound(err)) throw blobUnknown(d.value);
        if (err instanceof InvalidRangeError)
          throw new OciError(
            'SIZE_INVALID',
            'requested range not satisfiable',
            { size: err.size },
            416,
          );
        throw err;
      }
    });
  }

  /**
   * A presigned download URL for a blob this repository may serve, straight from the backend.
   * Undefined when the backend cannot presign, the repository does not link the blob, or this
   * store does not hold it (a replica then streams it from the primary): the caller serves the
   * request itself, errors included.
   */
  directUrl(
    repository: string,
    digest: string,
    expiresSeconds: number,
  ): Promise<{ url: string; digest: string } | undefined> {
    return translated(async () => {
      const d = parseDigest(digest);
      await this.repositoryLocks.assertReadable(repository);
      const key = Layout.blobData(d);
      const url = await this.store.presignGet(key, expiresSeconds);
      if (!url || !(await this.isLinked(repository, d)) || !(await exists(this.store, key)))
        return undefined;
      return { url, digest: d.value };
    });
  }

  /** Unlinks a blob from a repository (the bytes stay for other repositories). */
  delete(repository: string, digest: string): Promise<void> {
    return translated(async () => {
      const d = parseDigest(digest);
      if (!(await this.layout.hasLayer(repository, d))) throw blobUnknown(d.value);
      await this.repositoryLocks.assertBlobDeletable(repository);
      await this.layout.unlinkLayer(repository, d);
      await this.events.emit({ type: 'blobDeleted', repository, digest: d.value, at: Date.now() });
    });
  }

  /**
   * Cross-repository mount: links into `repository` a blob that `from` may serve. Without `from`
   * (an "automatic" mount, when the operator allows it) any stored blob with that digest is linked.
   * Returns undefined when it is not mountable (the caller falls back to an upload session).
   */
  mount(
    repository: string,
    digest: Digest,
    from: string | undefined,
  ): Promise<BlobInfo | undefined> {
    return translated(async () => {
      try {
        if (from !== undefined && !(await this.isLinked(from, digest))) return undefined;
        const info = await this.store.head(Layout.blobData(digest));
        await this.link(repository, digest, info.size);
        await this.events.emit({
          type: 'blobMounted',
          repository,
          digest: digest.value,
          from: from ?? '',
          at: Date.now(),
        });
        return { digest: digest.value, size: info.size };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    });
  }

  /**
   * Makes a stored blob servable from `repository`. The bytes are checked under the blob's lock,
   * so a link is never written to a blob that garbage collection has just deleted.
   */
  async link(repository: string, digest: Digest, size: number): Promise<void> {
    await this.guard.shared(this.locks(repository, digest), () =>
      this.linkLocked(repository, digest, size),
    );
  }

  /** The locks a writer holds to link `digest` into `repository` (`link` takes them itself). */
  locks(repository: string, digest: Digest): string[] {
    return [repoLock(repository), blobLock(digest.value)];
  }

  /** `link` for a caller that holds `locks(repository, digest)`. */
  async linkLocked(repository: string, digest: Digest, size: number): Promise<void> {
    if (!(await this.layout.hasBlob(digest))) throw blobUnknown(digest.value);
    const { key, body } = layerLinkEntry(repository, digest, size);
    await this.store.put(key, body);
    this.guard.referenced(digest.value);
  }

  /** Whether a layer link last written at `modified` is old enough to be rewritten on use. */
  isStale(modified: Date): boolean {
    const after = this.references.touchAfterMs;
    return after !== undefined && Date.now() - modified.getTime() > after;
  }

  /**
   * Rewrites the repository's link to `d`, under the locks GC respects; false when the link (or
   * the bytes) had gone by then.
   */
  async confirm(repository: string, d: Digest): Promise<boolean> {
    return this.guard.shared([repoLock(repository), blobLock(d.value)], async () => {
      if (!(await this.layout.hasLayer(repository, d)) || !(await this.layout.hasBlob(d)))
        return false;
      await this.layout.touchLayer(repository, d);
      this.guard.referenced(d.value);
      return true;
    });
  }

  /** Whether `repository` links the blob (as a layer or as a manifest revision). */
  isLinked(repository: string, d: Digest): Promise<boolean> {
    return this.layout.isLinked(repository, d);
  }

  private async assertLinked(repository: string, d: Digest): Promise<void> {
    if (!(await this.isLinked(repository, d))) throw blobUnknown(d.value);
  }
}

/** The `ContentGuard` key of a repository's links. */
export function repoLock(repository: string): string {
  return `repo:${repository}`;
}

/** The `ContentGuard` key of a blob's bytes. */
export function blobLock(digest: string): string {
  return `blob:${digest}`;
}

export function blobUnknown(digest: string): OciError {
  return new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`, { digest });
}
