import type { ObjectStore } from '@meridian/storage';
import { BlobStore, type ReferencePolicy } from './blob-store';
import { ContentGuard } from './content-guard';
import { RepositoryFence } from './repository-fence';
import { StoreFence } from './store-fence';
import { RecycleBin } from './recycle-bin';
import { Catalog } from './catalog';
import { RegistryEvents } from './events';
import { ManifestStore } from './manifest-store';
import { LockAdmin } from './lock-admin';
import { LockStore } from './lock-store';
import { MetadataCache, type MetadataCacheOptions } from './metadata-cache';
import { PullRecorder, type PullRecorderOptions } from './pull-recorder';
import { TagStore } from './tag-store';
import { UploadSessions, type UploadSessionOptions } from './upload-sessions';
import { FallbackBlobStore, FallbackManifestStore, type ReplicaOptions } from './replica';

export interface RegistryOptions {
  store: ObjectStore;
  events?: RegistryEvents;
  cache?: MetadataCacheOptions;
  uploads?: UploadSessionOptions;
  /** Set on a read-only replica: where to fall back on a miss, and how to tell a tag is behind. */
  replica?: ReplicaOptions;
  /**
   * Answer blob `GET`s (without `Range`) with a `307` to a presigned URL of the store, when it
   * can make one (S3) and holds the blob, so the bytes do not pass through the node. Default: off.
   */
  blobRedirect?: { expiresSeconds: number };
  /**
   * The smallest grace period a GC run may use (ADR 0012): on a primary, a layer link older than
   * half of it is re-confirmed when a client asks about the blob or a manifest references it.
   */
  gcMinGraceMs?: number;
  /** Soft delete (ADR 0017): deleted manifests stay this long in the recycle bin. Default off. */
  softDeleteMs?: number;
  /** Count pulls of manifests and tags in this region's storage (`PullRecorder`). Default: off. */
  pulls?: PullRecorderOptions;
}

/** The registry's domain: everything the distribution API does, over one object store. */
export class Registry {
  readonly events: RegistryEvents;
  readonly cache: MetadataCache;
  readonly blobs: BlobStore;
  readonly uploads: UploadSessions;
  readonly tags: TagStore;
  readonly manifests: ManifestStore;
  readonly catalog: Catalog;
  /** Locks (ADR 0015): read in every region, changed on the primary. */
  readonly locks: LockStore;
  /** Shows and changes locks (the admin API). */
  readonly lockAdmin: LockAdmin;
  /** Soft-deleted manifests: list, restore, purge. */
  readonly recycleBin: RecycleBin;
  /** Counts pulls in this region, when `opts.pulls` is set; `close` it to write the last ones. */
  readonly pulls?: PullRecorder;
  /** Keeps garbage collection and reference-creating writes apart (ADR 0012). */
  readonly guard = new ContentGuard();

  /**
   * Tells the registry whether its node is the only one writing the region's storage (ADR 0024):
   * while it is not, tags and locks are not cached between requests, writers stamp the blobs
   * they reference so another node's garbage collection leaves them alone, and manifest writes
   * are announced in the store so another node's purge or retention run does not remove
   * anything blind while they land (ADR 0021).
   */
  setExclusive(alone: () => boolean): void {
    this.cache.setExclusive(alone);
    this.guard.fence = new StoreFence(this.opts.store, { active: () => !alone() });
    this.guard.repositories = new RepositoryFence(this.opts.store, { active: () => !alone() });
  }

  constructor(readonly opts: RegistryOptions) {
    const { store } = opts;
    this.events = opts.events ?? new RegistryEvents();
    this.cache = new MetadataCache(opts.cache);
    this.locks = new LockStore(store, this.cache, this.events, opts.replica?.primary.baseUrl);
    this.lockAdmin = new LockAdmin(store, this.locks);
    const references: ReferencePolicy = {
      guard: this.guard,
      touchAfterMs:
        opts.replica || opts.gcMinGraceMs === undefined ? undefined : opts.gcMinGraceMs / 2,
    };
    this.blobs = opts.replica
      ? new FallbackBlobStore(store, this.events, opts.replica, references, this.locks)
      : new BlobStore(store, this.events, references, this.locks);
    this.uploads = new UploadSessions(store, this.blobs, this.events, opts.uploads);
    this.tags = new TagStore(store, this.cache, this.events, this.locks);
    this.manifests = opts.replica
      ? new FallbackManifestStore(
          store,
          this.tags,
          this.cache,
          this.events,
          opts.replica,
          references,
          this.locks,
        )
      : new ManifestStore(store, this.tags, this.cache, this.events, references, this.locks);
    this.catalog = new Catalog(store, this.cache, this.locks);
    this.manifests.softDeleteMs = opts.softDeleteMs;
    this.recycleBin = new RecycleBin(store, this.manifests, this.events);
    if (opts.pulls) {
      this.pulls = new PullRecorder(store, opts.pulls);
      this.manifests.pulls = this.pulls;
    }
    // A new repository must appear in the catalog at once, not after the cache TTL.
    this.events.subscribe(() => {
      this.cache.tagLists.delete('\0catalog');
    });
  }

  get store(): ObjectStore {
    return this.opts.store;
  }
}
