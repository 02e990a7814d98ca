import { PassThrough, type Readable } from 'node:stream';
import { Counter, register } from 'prom-client';
import { digestOf, isDigestLike, OciError, parseDigest, type Digest } from '@meridian/oci';
import {
  Layout,
  putVerified,
  type ByteRange,
  type GetResult,
  type ObjectStore,
  type RevisionRecord,
} from '@meridian/storage';
import type { Logger } from 'pino';
import { BlobStore, type BlobInfo } from './blob-store';
import type { RegistryEvents } from './events';
import { ManifestStore, type StoredManifest } from './manifest-store';
import type { MetadataCache } from './metadata-cache';
import type { TagStore } from './tag-store';
import type { PrimaryUpstream } from './upstream';

export const replicaFallbacks = new Counter({
  name: 'meridian_replica_fallbacks_total',
  help: 'Replica reads served from the primary because the object was not in the region yet',
  labelNames: ['kind'] as const,
  registers: [register],
});

export const replicaStaleReads = new Counter({
  name: 'meridian_replica_stale_tag_reads_total',
  help: 'Tag reads answered from the region although the tag was behind and the primary was unreachable',
  registers: [register],
});

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
  log?: Logger;
}

/**
 * Manifests on a replica: local first; a miss, or a tag the primary has moved since this region
 * copied it, is answered from the primary. While the primary is unreachable a behind tag is
 * served from the region (availability first) and counted.
 */
export class FallbackManifestStore extends ManifestStore {
  constructor(
    store: ObjectStore,
    private readonly tagStore: TagStore,
    cache: MetadataCache,
    events: RegistryEvents,
    private readonly replica: ReplicaOptions,
  ) {
    super(store, tagStore, cache, events);
  }

  override async resolve(repository: string, reference: string): Promise<RevisionRecord> {
    const behind = !isDigestLike(reference) && (await this.tagIsBehind(repository, reference));
    if (!behind) {
      try {
        return await super.resolve(repository, reference);
      } catch (err) {
        if (!(err instanceof OciError && err.code === 'MANIFEST_UNKNOWN')) throw err;
      }
    }
    const m = await this.get(repository, reference);
    return { digest: m.digest, mediaType: m.mediaType, size: m.size };
  }

  override async get(repository: string, reference: string): Promise<StoredManifest> {
    const behind = !isDigestLike(reference) && (await this.tagIsBehind(repository, reference));
    if (!behind) {
      try {
        return await super.get(repository, reference);
      } catch (err) {
        if (!(err instanceof OciError && err.code === 'MANIFEST_UNKNOWN')) throw err;
      }
    }
    try {
      return await this.fromPrimary(repository, reference);
    } catch (err) {
      if (behind && err instanceof OciError && err.code === 'UNAVAILABLE') {
        replicaStaleReads.inc();
        return super.get(repository, reference);
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

  private async fromPrimary(repository: string, reference: string): Promise<StoredManifest> {
    const m = await this.replica.primary.manifest(repository, reference);
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
 * upstream fetch per digest: concurrent readers wait for it and are served locally.
 */
export class FallbackBlobStore extends BlobStore {
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(
    private readonly local: ObjectStore,
    events: RegistryEvents,
    private readonly replica: ReplicaOptions,
  ) {
    super(local, events);
  }

  override async stat(repository: string, digest: string): Promise<BlobInfo> {
    try {
      return await super.stat(repository, digest);
    } catch (err) {
      if (!isBlobUnknown(err)) throw err;
    }
    const d = parseDigest(digest);
    const size = await this.replica.primary.blobSize(repository, d.value);
    if (size === undefined)
      throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
    this.replica.onMiss?.({ kind: 'blob', repository, digest: d.value });
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
    this.replica.onMiss?.({ kind: 'blob', repository, digest: d.value });
    const running = this.inflight.get(d.value);
    if (running || range) {
      await (running ?? this.fetch(repository, d, undefined));
      return super.open(repository, digest, range);
    }
    const client = new PassThrough();
    const up = await this.replica.primary.blob(repository, d.value);
    if (!up) throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
    replicaFallbacks.inc({ kind: 'blob' });
    void this.fetch(repository, d, { ...up, client }).catch((err: unknown) =>
      this.replica.log?.warn(
        { err: (err as Error).message, digest: d.value },
        'fallback write failed',
      ),
    );
    return { body: client, size: up.size, length: up.size, digest: d.value };
  }

  /** Copies a blob from the primary into the region, optionally teeing the bytes to a client. */
  private fetch(
    repository: string,
    d: Digest,
    started: { body: Readable; size: number; client: PassThrough } | undefined,
  ): Promise<void> {
    const p = (async () => {
      const up = started ?? (await this.replica.primary.blob(repository, d.value));
      if (!up) throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${d.value}`);
      if (started) started.body.pipe(started.client);
      await putVerified(this.local, Layout.blobData(d), up.body, d, up.size);
      await this.link(repository, d, up.size);
    })();
    this.inflight.set(d.value, p);
    void p.finally(() => this.inflight.delete(d.value)).catch(() => {});
    return p;
  }
}

function isBlobUnknown(err: unknown): boolean {
  return err instanceof OciError && err.code === 'BLOB_UNKNOWN';
}
