import type { Digest } from '@meridian/oci';
import type { ObjectStore } from '@meridian/storage';

/**
 * What keeps the collector and reference-creating writers apart (the registry's `ContentGuard`
 * on a primary; a cluster-wide mutex on a replica). Keys are `repo:<name>` and `blob:<digest>`.
 */
export interface GcGuard {
  exclusive<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** Digests referenced from now until `stop`: live for the run, whatever the listing saw. */
  watch?(): { seen: ReadonlySet<string>; stop: () => void };
  /**
   * Other nodes' writers (ADR 0024): claims a blob before it is unlinked or deleted; a contested
   * claim (another node referenced it lately) leaves it alone, an invalid one (held too long) too.
   */
  claim?(d: Digest): Promise<{ contested: boolean; valid(): boolean; release(): Promise<void> }>;
  /** After a blob's bytes are deleted: forgets what `claim` keeps about it. */
  forget?(d: Digest): Promise<void>;
}

/** Points where tests widen the race windows. Each runs holding the lock of the step. */
export interface GcHooks {
  beforeUnlink?(repository: string, digest: string): Promise<void>;
  beforeDelete?(digest: string): Promise<void>;
}

export interface CollectorOptions {
  region: string;
  store: ObjectStore;
  /**
   * `primary`: decides from its own state, unlinks unreferenced links and deletes unlinked
   * bytes. `replica`: deletes only bytes its region no longer links and the primary no longer
   * holds (the primary decided); its links follow the primary's through replication.
   */
  role: 'primary' | 'replica';
  /** The primary's store; required for a replica. */
  primary?: ObjectStore;
  /**
   * A replica region's replication scope (ADR 0026): a blob the primary still holds, but only in
   * repositories outside it, is not needed here once nothing in the region links it.
   */
  scope?: { covers(repository: string): boolean };
  guard?: GcGuard;
  /** Purges upload sessions idle past their timeout (primary); returns how many. */
  purgeUploads?: () => Promise<number>;
  /** Purges soft-deleted manifests past their retention (primary); returns how many. */
  purgeTombstones?: () => Promise<number>;
  /** Called after each link the collector removed (the primary emits `blobDeleted`). */
  onUnlinked?: (repository: string, digest: string) => Promise<void>;
  hooks?: GcHooks;
  now?: () => number;
  /**
   * The share of the process's time a run may take (0–1], so a node's requests keep their
   * latency while it collects in-process. Default 0.5; 1 runs flat out.
   */
  duty?: number;
}

export interface GcRunOptions {
  /**
   * `full`: mark every repository, sweep every blob (the backstop). `incremental`: only what
   * deletes left behind — the repositories and blobs named in `_gc/` by the event subscriber (a
   * primary), or the `digests` the primary freed (a replica). Default `full`.
   */
  mode?: 'full' | 'incremental';
  /** Replica, incremental: the blobs the primary freed. */
  digests?: string[];
  dryRun?: boolean;
  graceMs: number;
  /** Progress: phase name and how far it is (`done` of `total`). */
  onProgress?: (phase: string, done: number, total: number) => void;
}

export interface GcReport {
  region: string;
  role: 'primary' | 'replica';
  mode: 'full' | 'incremental';
  dryRun: boolean;
  graceSeconds: number;
  repositories: number;
  manifests: number;
  blobsScanned: number;
  /** Links removed (or that would be, in a dry run). */
  linksRemoved: number;
  referrerEntriesRemoved: number;
  /** Blobs deleted (or that would be) and their bytes. */
  blobsDeleted: number;
  bytesFreed: number;
  /** Candidates a concurrent reference rescued at the moment of deletion. */
  conflicts: number;
  /** Repositories whose links were all kept because a manifest could not be read. */
  unreadableRepositories: string[];
  uploadsPurged: number;
  stagingRemoved: number;
  /** Soft-deleted manifests purged for good (their bytes go in a later run). */
  tombstonesPurged: number;
  /** The blobs deleted (a primary's list is what its replicas then collect). */
  deletedDigests: string[];
  /** Replica, incremental: candidates the region still links (their unlink has not arrived). */
  deferredDigests: string[];
  startedAt: string;
  durationMs: number;
}
