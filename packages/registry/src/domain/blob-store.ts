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
import type { RegistryEvents } from './events';
import { translated } from './storage-errors';

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Repository-scoped blobs: a repository may serve a blob only through its own link. */
export class BlobStore {
  private readonly layout: RepositoryLayout;

  constructor(
    private readonly store: ObjectStore,
    private readonly events: RegistryEvents,
  ) {
    this.layout = new RepositoryLayout(store);
  }

  /** Size of a blob this repository may serve. Throws `BLOB_UNKNOWN`. */
  stat(repository: string, digest: string): Promise<BlobInfo> {
    return translated(async () => {
      const d = parseDigest(digest);
      // The bytes first: a push asks about blobs that are mostly nowhere yet, answered by one
      // lookup; then the repository's link (a layer, or a manifest fetched as a blob).
      const info = await this.store.head(Layout.blobData(d)).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (!info || !(await this.isLinked(repository, d))) throw blobUnknown(d.value);
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

  /** Makes a stored blob servable from `repository`. */
  async link(repository: string, digest: Digest, size: number): Promise<void> {
    const { key, body } = layerLinkEntry(repository, digest, size);
    await this.store.put(key, body);
  }

  /** Whether `repository` links the blob (as a layer or as a manifest revision). */
  isLinked(repository: string, d: Digest): Promise<boolean> {
    return this.layout.isLinked(repository, d);
  }

  private async assertLinked(repository: string, d: Digest): Promise<void> {
    if (!(await this.isLinked(repository, d))) throw blobUnknown(d.value);
  }
}

export function blobUnknown(digest: string): OciError {
  return new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`, { digest });
}
