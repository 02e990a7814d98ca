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
import { BlobFill, FIRST_SEND } from './blob-fill';
import { upstreamStream } from './upstream-stream';
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
  /** Where a blob being fetched from the primary is spooled for its readers. Default `os.tmpdir()`. */
  spoolDir?: string;
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
 * Blobs on a replica: local first; on a miss the blob is fetched from the primary **once** into a
 * `BlobFill` (a spool every reader streams from while it arrives) and written from it into the
 * region (digest-verified, staged, then moved into place). Every concurrent miss of the digest —
 * the first client, a herd of others, the region's copy — reads the same fill from its first
 * byte, each at its own pace: the slowest of a herd takes about one cold pull, and the primary
 * serves the blob once.
 *
 * No reader depends on another: a client that goes away stops nothing, and a region copy that
 * fails (a full disk) or stalls is dropped and counted while the clients are served on. A primary
 * that fails, ends short, stalls or sends bytes that do not hash to the digest ends every
 * reader's response with an error at once (the connection is aborted; the client retries, and is
 * then served from wherever the bytes are or gets a clean error).
 */
export class FallbackBlobStore extends BlobStore {
  /** Copies into the region in progress (and, briefly, landed), by digest. */
  private readonly inflight = new Map<string, RegionCopy>();
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
    const running = this.inflight.get(d.value);
    if (running) return this.follow(running, repository, d, range);
    if (range) {
      // A part with no copy running: straight from the primary (the part may lie far ahead of
      // where a fresh copy is), while the whole blob is copied in the background.
      this.copy(repository, d);
      return this.fromPrimary(repository, d, range);
    }
    // The first miss: registered before the first await, so every concurrent miss of the same
    // digest reads this one fetch.
    return this.follow(this.copy(repository, d), repository, d, undefined);
  }

  /** Serves a miss from the region copy `c` (its fill while it runs, the region once it landed). */
  private async follow(
    c: RegionCopy,
    repository: string,
    d: Digest,
    range: ByteRange | undefined,
  ): Promise<GetResult & { digest: string }> {
    const { fill, size } = await c.started;
    let linked: Promise<void> | undefined;
    if (c.repository !== repository) {
      // The copy was made for another repository: this one may read it only if the primary
      // says so; it is linked once the copy landed.
      if ((await this.sizeAtPrimary(repository, d.value)) === undefined)
        throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
      linked = c.landed.then((ok) => (ok ? this.link(repository, d, size) : undefined));
      linked.catch(() => {});
    }
    if (range && range.start >= size)
      throw new OciError('SIZE_INVALID', 'requested range not satisfiable', { size }, 416);
    if (fill.joinable) {
      const r = { start: range?.start ?? 0, end: Math.min(range?.end ?? size - 1, size - 1) };
      // A pull completes once the region's copy settled: repeated, it is served from there, and
      // the sync job that runs next finds the copy instead of transferring the blob again.
      // The route sends `file` (its reused buffers); `body` is there for any other reader.
      const file = fill.region(r, { endAfter: c.landed });
      try {
        // Answered once the first send is there: a fill that dies before is a clean 503.
        await fill.ready(Math.min(r.end + 1, r.start + FIRST_SEND));
      } catch (err) {
        await file.close();
        throw new OciError('UNAVAILABLE', `the primary's stream failed: ${(err as Error).message}`);
      }
      const body = fill.reader(r, { endAfter: c.landed, lazy: true });
      return { body, file, size, length: r.end - r.start + 1, digest: d.value };
    }
    if (!fill.error && (await c.landed)) {
      // The fill is over and the copy landed (a miss that read the region just before it did).
      await linked;
      return super.open(repository, d.value, range);
    }
    // The fill failed (the primary went away) or its copy did: this client is served from the
    // primary without another copy, and fails fast if the primary is gone.
    this.replica.onMiss?.({ kind: 'blob', repository, digest: d.value });
    return this.fromPrimary(repository, d, range);
  }

  /**
   * Starts copying a blob from the primary into the region through a fill, and registers it
   * before the first await. The sync job is bumped once the copy settled, so it finds the
   * region's copy instead of transferring the blob again.
   */
  private copy(repository: string, d: Digest): RegionCopy {
    let settle!: (ok: boolean) => void;
    const landed = new Promise<boolean>((resolve) => (settle = resolve));
    const started = (async () => {
      const up = await this.replica.primary.blob(repository, d.value);
      if (!up) throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
      const fill = await BlobFill.start(up.body, {
        digest: d,
        length: up.length,
        stallTimeoutMs: this.stallTimeoutMs,
        spoolDir: this.replica.spoolDir,
      });
      replicaFallbacks.inc({ kind: 'blob' });
      fill.done.catch((err: Error) => {
        replicaFallbackUpstreamFailures.inc();
        this.replica.log?.warn(
          { err: err.message, digest: d.value },
          'fallback: the primary stream failed',
        );
      });
      void this.intoRegion(repository, d, up.size, fill).then(settle);
      return { fill, size: up.size };
    })();
    started.catch(() => settle(false));
    void landed.then(() => this.replica.onMiss?.({ kind: 'blob', repository, digest: d.value }));
    const c: RegionCopy = { repository, started, landed };
    this.track(d.value, c);
    return c;
  }

  /** Writes the fill into the region; false when the copy failed or was dropped. */
  private intoRegion(
    repository: string,
    d: Digest,
    size: number,
    fill: BlobFill,
  ): Promise<boolean> {
    let pos = 0;
    const body = fill.reader(
      { start: 0 },
      {
        onRead: (p) => {
          pos = p;
          arm();
        },
      },
    );
    let timer: NodeJS.Timeout | undefined;
    let dropNow!: () => void;
    const dropped = new Promise<false>((resolve) => (dropNow = () => resolve(false)));
    const drop = (err: Error): void => {
      clearTimeout(timer);
      replicaFallbackCopyFailures.inc();
      this.replica.log?.warn(
        { err: err.message, digest: d.value },
        'fallback: copying the blob into the region failed; serving it from the primary',
      );
      body.destroy(err);
      // The clients reading the fill are served on; once they are gone, nobody needs it.
      fill.stopWhenNobodyReads();
      dropNow();
    };
    // A region copy that takes no byte for stallTimeoutMs while bytes wait is dropped.
    function arm(): void {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (pos < fill.received) drop(new Error(`local copy accepted nothing for ${ms} ms`));
        else arm();
      }, ms);
      timer.unref();
    }
    const ms = this.stallTimeoutMs;
    arm();
    const write = (async () => {
      try {
        await new RepositoryLayout(this.local).writeBlob(d, body, size);
        await this.link(repository, d, size);
        return true;
      } catch (err) {
        // A failed fill already failed every reader (and is counted as the primary's failure).
        if (!fill.error) drop(err as Error);
        return false;
      } finally {
        clearTimeout(timer);
      }
    })();
    // A dropped copy settles at once, even if the store never answers the abandoned write.
    return Promise.race([write, dropped]);
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
    const log = this.replica.log;
    const body = upstreamStream(up.body, {
      length: up.length,
      stallTimeoutMs: this.stallTimeoutMs,
      onFailed: (err) => {
        replicaFallbackUpstreamFailures.inc();
        log?.warn({ err: err.message, digest: d.value }, 'fallback: the primary stream failed');
      },
    });
    return { body, size: up.size, length: up.length, digest: d.value };
  }

  private track(digest: string, c: RegionCopy): void {
    this.inflight.set(digest, c);
    const forget = (): void => {
      if (this.inflight.get(digest) === c) this.inflight.delete(digest);
    };
    // A fill that failed is forgotten at once (the next miss fetches again); a copy that
    // landed is remembered a moment longer: a miss that read the region just before the copy
    // landed then uses it instead of fetching the blob a second time.
    void c.started.then(({ fill }) => fill.done).catch(forget);
    void c.landed.then((ok) => {
      if (ok) setTimeout(forget, LANDED_GRACE_MS).unref();
      else forget();
    });
  }
}

/** A blob being copied from the primary into the region. */
interface RegionCopy {
  /** The repository the copy was fetched (and is linked) for. */
  repository: string;
  /** The fill, once the primary answered; rejects when it did not (gone, 404). */
  started: Promise<{ fill: BlobFill; size: number }>;
  /** True once the blob landed in the region; false when the copy failed or was dropped. */
  landed: Promise<boolean>;
}

function isBlobUnknown(err: unknown): boolean {
  return err instanceof OciError && err.code === 'BLOB_UNKNOWN';
}

export { BlobFill, FIRST_SEND, type BlobFillOptions } from './blob-fill';
