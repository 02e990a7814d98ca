import type { Readable } from 'node:stream';
import { digestOf, isDigestLike, OciError, parseDigest, type Digest } from '@meridian/oci';
import {
  RepositoryLayout,
  type ByteRange,
  type GetResult,
  type ObjectStore,
  type RevisionRecord,
} from '@meridian/storage';
import type { Logger } from 'pino';
import { BlobStore, type BlobInfo, type ReferencePolicy } from './blob-store';
import type { RegistryEvents } from './events';
import type { LockStore } from './lock-store';
import { ManifestStore, type StoredManifest } from './manifest-store';
import type { MetadataCache } from './metadata-cache';
import type { TagStore } from './tag-store';
import type { PrimaryUpstream, UpstreamManifest } from './upstream';
import { UpstreamTee } from './upstream-tee';
import {
  replicaFallbackCopyFailures,
  replicaFallbackUpstreamFailures,
  replicaFallbacks,
  replicaStaleReads,
} from '../metrics';

/** Default for `ReplicaOptions.stallTimeoutMs`. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;

/** How long a fallback copy that landed still answers concurrent misses of its digest. */
const LANDED_GRACE_MS = 5_000;

/** What a replica knows about tag changes the primary committed (see replication's TagWatch). */
export interface TagFreshness {
  latestChange(repository: string, tag: string): { seq: number; digest?: string } | undefined;
}

/** The object a miss asks the workers to copy first. */
export type MissedObject =
  | { kind: 'blob'; repository: string; digest: string }
  | { kind: 'manifest'; repository: string; digest: string }
  | { kind: 'tag'; repository: string; tag: string };

export interface ReplicaOptions {
  /** This replica's region. */
  region: string;
  primary: PrimaryUpstream;
  freshness?: TagFreshness;
  /** Called on every miss, to move that object's sync job to the front. */
  onMiss?: (o: MissedObject) => void;
  /**
   * A blob streamed from the primary that delivers no byte for this long (while the client or
   * the local copy waits for one) is aborted; a local copy that accepts none for this long is
   * dropped. Default 30 s.
   */
  stallTimeoutMs?: number;
  log?: Logger;
}

/**
 * Manifests on a replica: local first; a miss, or a tag the primary has moved since this region
 * copied it, is answered from the primary. While the primary is unreachable a behind tag is
 * served from the region (availability first) and counted.
 */
export class FallbackManifestStore extends ManifestStore {
  /** Manifest requests at the primary in progress, by `repository@reference`. */
  private readonly inflight = new Map<string, Promise<UpstreamManifest | undefined>>();

  constructor(
    store: ObjectStore,
    private readonly tagStore: TagStore,
    cache: MetadataCache,
    events: RegistryEvents,
    private readonly replica: ReplicaOptions,
    references?: ReferencePolicy,
    locks?: LockStore,
  ) {
    super(store, tagStore, cache, events, references, locks);
  }

  protected override async lookup(repository: string, reference: string): Promise<RevisionRecord> {
    const behind = !isDigestLike(reference) && (await this.tagIsBehind(repository, reference));
    if (!behind) {
      try {
        return await super.lookup(repository, reference);
      } catch (err) {
        if (!(err instanceof OciError && err.code === 'MANIFEST_UNKNOWN')) throw err;
      }
    }
    const m = await this.load(repository, reference);
    return { digest: m.digest, mediaType: m.mediaType, size: m.size };
  }

  protected override async load(repository: string, reference: string): Promise<StoredManifest> {
    const behind = !isDigestLike(reference) && (await this.tagIsBehind(repository, reference));
    if (!behind) {
      try {
        return await super.load(repository, reference);
      } catch (err) {
        if (!(err instanceof OciError && err.code === 'MANIFEST_UNKNOWN')) throw err;
      }
    }
    try {
      return await this.fromPrimary(repository, reference);
    } catch (err) {
      if (behind && err instanceof OciError && err.code === 'UNAVAILABLE') {
        replicaStaleReads.inc();
        return super.load(repository, reference);
      }
      throw err;
    }
  }

  private async tagIsBehind(repository: string, tag: string): Promise<boolean> {
    const latest = this.replica.freshness?.latestChange(repository, tag);
    if (!latest) return false;
    const local = await this.tagStore.get(repository, tag);
    return !local || local.seq < latest.seq;
  }

  /** The primary's manifest; concurrent misses of one reference share one request. */
  private fetching(repository: string, reference: string) {
    const key = `${repository}@${reference}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.replica.primary.manifest(repository, reference);
      this.inflight.set(key, p);
      const done = (): void => void this.inflight.delete(key);
      p.then(done, done);
    }
    return p;
  }

  private async fromPrimary(repository: string, reference: string): Promise<StoredManifest> {
    const m = await this.fetching(repository, reference);
    if (!m)
      throw new OciError(
        'MANIFEST_UNKNOWN',
        `manifest unknown to registry: ${reference.slice(0, 140)}`,
      );
    const expected = isDigestLike(reference) ? parseDigest(reference) : parseDigest(m.digest);
    if (digestOf(m.bytes, expected.algorithm) !== expected.value)
      throw new OciError(
        'UNAVAILABLE',
        'the primary sent a manifest that does not match its digest',
      );
    replicaFallbacks.inc({ kind: 'manifest' });
    this.replica.onMiss?.(
      isDigestLike(reference)
        ? { kind: 'manifest', repository, digest: expected.value }
        : { kind: 'tag', repository, tag: reference },
    );
    return { digest: expected.value, mediaType: m.mediaType, size: m.size, bytes: m.bytes };
  }
}

/**
 * Blobs on a replica: local first; on a miss the blob streams from the primary to the client
 * while it is written (digest-verified, staged, then moved into place) into the region. One
 * upstream copy per digest: concurrent readers wait for it and are served locally.
 *
 * The client's stream never depends on the local copy: a copy that fails (a full disk) or stalls
 * is dropped and counted, and the client is served on from the primary. A primary that fails,
 * ends short or stalls ends the client's response at once (the connection is aborted, so the
 * client retries, and is then served from wherever the bytes are or gets a clean error).
 */
export class FallbackBlobStore extends BlobStore {
  /** Copies into the region in progress, by digest: true when the blob landed. */
  private readonly inflight = new Map<string, Promise<boolean>>();
  /** `HEAD`s at the primary in progress, by `repository@digest`. */
  private readonly sizing = new Map<string, Promise<number | undefined>>();
  private readonly stallTimeoutMs: number;

  constructor(
    private readonly local: ObjectStore,
    events: RegistryEvents,
    private readonly replica: ReplicaOptions,
    references?: ReferencePolicy,
    locks?: LockStore,
  ) {
    super(local, events, references, locks);
    this.stallTimeoutMs = replica.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  }

  override async stat(repository: string, digest: string): Promise<BlobInfo> {
    try {
      return await super.stat(repository, digest);
    } catch (err) {
      if (!isBlobUnknown(err)) throw err;
    }
    const d = parseDigest(digest);
    const size = await this.sizeAtPrimary(repository, d.value);
    if (size === undefined)
      throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
    // No bump here: the GET that follows copies the blob itself (and bumps the job once that
    // copy settles); a job bumped now would race it and copy the same bytes a second time.
    return { digest: d.value, size };
  }

  override async open(
    repository: string,
    digest: string,
    range?: ByteRange,
  ): Promise<GetResult & { digest: string }> {
    try {
      return await super.open(repository, digest, range);
    } catch (err) {
      if (!isBlobUnknown(err)) throw err;
    }
    const d = parseDigest(digest);
    if (range) {
      // A part: straight from the primary, while the whole blob is copied in the background.
      this.replica.onMiss?.({ kind: 'blob', repository, digest: d.value });
      this.copyInBackground(repository, d);
      return this.fromPrimary(repository, d, range);
    }
    const running = this.inflight.get(d.value);
    if (!running) return this.lead(repository, d);
    // A herd: one copy from the primary is running; wait for it and serve the region's copy.
    if (await running) {
      try {
        return await super.open(repository, digest);
      } catch (err) {
        if (!isBlobUnknown(err)) throw err;
      }
      // The copy was made for another repository: link this one if the primary says so.
      const size = await this.sizeAtPrimary(repository, d.value);
      if (size === undefined)
        throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
      await this.link(repository, d, size);
      return super.open(repository, digest);
    }
    // The copy failed (the primary went away, or the region's disk): this client is served
    // from the primary without another copy, and fails fast if the primary is gone.
    this.replica.onMiss?.({ kind: 'blob', repository, digest: d.value });
    return this.fromPrimary(repository, d, undefined);
  }

  /**
   * The first miss of a blob: registered before the first await, so every concurrent miss of
   * the same digest waits for this one upstream fetch, which streams to this client while it
   * is written into the region. The sync job is bumped once the copy settled, so it finds the
   * region's copy instead of transferring the blob again.
   */
  private async lead(repository: string, d: Digest): Promise<GetResult & { digest: string }> {
    let settle!: (ok: boolean) => void;
    this.track(d.value, new Promise<boolean>((resolve) => (settle = resolve)));
    const settled = (ok: boolean): void => {
      settle(ok);
      this.replica.onMiss?.({ kind: 'blob', repository, digest: d.value });
    };
    let up: Awaited<ReturnType<PrimaryUpstream['blob']>>;
    try {
      up = await this.replica.primary.blob(repository, d.value);
    } catch (err) {
      settled(false);
      throw err;
    }
    if (!up) {
      settled(false);
      throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
    }
    replicaFallbacks.inc({ kind: 'blob' });
    const tee = this.tee(d, up.body, up.length, true, true);
    void this.copying(repository, d, up.size, tee).then(settled);
    return { body: tee.client, size: up.size, length: up.length, digest: d.value };
  }

  /** The blob's size at the primary; concurrent asks for one blob share one `HEAD`. */
  private sizeAtPrimary(repository: string, digest: string): Promise<number | undefined> {
    const key = `${repository}@${digest}`;
    let p = this.sizing.get(key);
    if (!p) {
      p = this.replica.primary.blobSize(repository, digest);
      this.sizing.set(key, p);
      const done = (): void => void this.sizing.delete(key);
      p.then(done, done);
    }
    return p;
  }

  /** Streams a blob (or a range) from the primary to the client only. */
  private async fromPrimary(
    repository: string,
    d: Digest,
    range: ByteRange | undefined,
  ): Promise<GetResult & { digest: string }> {
    const up = await this.replica.primary.blob(repository, d.value, range);
    if (!up) throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
    replicaFallbacks.inc({ kind: 'blob' });
    const tee = this.tee(d, up.body, up.length, true, false);
    return { body: tee.client, size: up.size, length: up.length, digest: d.value };
  }

  /** Copies a blob into the region with no client attached, unless a copy is running. */
  private copyInBackground(repository: string, d: Digest): void {
    if (this.inflight.has(d.value)) return;
    const p = (async () => {
      const up = await this.replica.primary.blob(repository, d.value);
      if (!up) return false;
      const tee = this.tee(d, up.body, up.length, false, true);
      return this.copying(repository, d, up.size, tee);
    })().catch(() => false);
    this.track(d.value, p);
  }

  /** Writes `tee.local` into the region; false when the copy failed or was dropped. */
  private copying(repository: string, d: Digest, size: number, tee: UpstreamTee): Promise<boolean> {
    const write = (async () => {
      try {
        await new RepositoryLayout(this.local).writeBlob(d, tee.local, size);
        await this.link(repository, d, size);
        return true;
      } catch (err) {
        tee.dropLocal(err as Error);
        return false;
      }
    })();
    // A dropped copy settles at once, even if the store never answers the abandoned write.
    return Promise.race([write, tee.localDropped]);
  }

  private tee(
    d: Digest,
    body: Readable,
    length: number,
    client: boolean,
    local: boolean,
  ): UpstreamTee {
    const log = this.replica.log;
    return new UpstreamTee(body, {
      length,
      stallTimeoutMs: this.stallTimeoutMs,
      client,
      local,
      onLocalDropped: (err) => {
        replicaFallbackCopyFailures.inc();
        log?.warn(
          { err: err.message, digest: d.value },
          'fallback: copying the blob into the region failed; serving it from the primary',
        );
      },
      onUpstreamFailed: (err) => {
        replicaFallbackUpstreamFailures.inc();
        log?.warn({ err: err.message, digest: d.value }, 'fallback: the primary stream failed');
      },
    });
  }

  private track(digest: string, p: Promise<boolean>): void {
    this.inflight.set(digest, p);
    const forget = (): void => {
      if (this.inflight.get(digest) === p) this.inflight.delete(digest);
    };
    void p.then((landed) => {
      // A copy that landed is remembered a moment longer: a miss that read the region just
      // before the copy landed then waits on it instead of fetching the blob a second time.
      if (landed) setTimeout(forget, LANDED_GRACE_MS).unref();
      else forget();
    });
  }
}

function isBlobUnknown(err: unknown): boolean {
  return err instanceof OciError && err.code === 'BLOB_UNKNOWN';
}
