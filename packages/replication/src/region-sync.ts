import { digestOf, parseDigest, parseManifest, type Digest } from '@meridian/oci';
import { unrecoverable } from '@meridian/redis';
import {
  Layout,
  RepositoryLayout,
  exists,
  isNotFound,
  manifestPlan,
  parseLockRef,
  type ObjectStore,
} from '@meridian/storage';
import { copyBlob, copySmall, type CopyListener, type CopyMode } from './copy';
import { bytesCopied, objectsCopied, sourceRequests } from './metrics';
import type { SyncTarget } from './targets';

/**
 * Makes one object in a region equal to the primary's current state. Idempotent: it reads the
 * primary when it runs, so order, duplicates and retries cannot roll anything back. Visibility
 * order inside the region: blobs, then child manifests, then the manifest (and its referrer
 * entry), then the tag.
 */
/** Runs `fn` while holding a cluster-wide lock named `name` (waits for it). */
export type Mutex = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

const noMutex: Mutex = (_name, fn) => fn();

export class RegionSync {
  private readonly primary: ObjectStore;
  private readonly src: RepositoryLayout;
  private readonly dst: RepositoryLayout;

  constructor(
    readonly region: string,
    primary: ObjectStore,
    private readonly target: ObjectStore,
    /** Serialises copies of one digest into the region (a shared base is copied once), and jobs of one manifest or tag. */
    private readonly mutex: Mutex = noMutex,
    /** Told of each blob copied into the region (the dashboard's copy rate). */
    private readonly onCopied?: CopyListener,
  ) {
    this.primary = countRequests(primary, region);
    this.src = new RepositoryLayout(this.primary);
    this.dst = new RepositoryLayout(target);
  }

  private async copy(d: Digest): Promise<CopyMode> {
    // Objects appear atomically, so one already here is complete: skip the lock round trips.
    if (await this.dst.hasBlob(d)) return 'skipped';
    return this.mutex(`blob:${d.value}`, () =>
      copyBlob(this.primary, this.target, d, this.region, this.onCopied),
    );
  }

  async apply(t: SyncTarget): Promise<void> {
    switch (t.kind) {
      case 'blob':
        return this.syncBlob(t.repository, parseDigest(t.digest));
      case 'manifest':
        return this.syncManifest(t.repository, parseDigest(t.digest), 0);
      case 'tag':
        return this.syncTag(t.repository, t.tag);
      case 'lock':
        return this.syncLock(t.repository, t.lock);
    }
  }

  /**
   * A lock record (ADR 0015): copied only when the primary's `seq` is greater than the
   * region's, under a cluster-wide lock of the record, so jobs that run late, twice or side by
   * side can never put an older lock back.
   */
  async syncLock(repository: string, ref: string): Promise<void> {
    const target = parseLockRef(ref);
    if (!target) throw unrecoverable(`not a lock: ${ref}`);
    await this.mutex(`lock:${repository}|${ref}`, async () => {
      const [primary, local] = await Promise.all([
        this.src.readLock(repository, target),
        this.dst.readLock(repository, target),
      ]);
      if (!primary) {
        // Records are never deleted on the primary; one only here is not the primary's state.
        if (local) await this.dst.deleteLock(repository, target);
        return;
      }
      if (local && local.seq >= primary.seq) return;
      await this.dst.writeLock(repository, target, primary);
      objectsCopied.inc({ region: this.region, kind: 'lock' });
    });
  }

  /**
   * A repository's blob: bytes first (once per region), then the repository's link. The
   * primary's link is read (existence and bytes) in the same round trip as the region is
   * checked, so a blob the region already holds costs one round trip to the primary.
   */
  syncBlob(repository: string, d: Digest): Promise<void> {
    // One job of a repository's link at a time, as manifests and tags: a job that read the link
    // before a delete and wrote it after the delete's job would link the layer here for good.
    return this.mutex(`link:${repository}@${d.value}`, () => this.syncBlobHeld(repository, d));
  }

  private async syncBlobHeld(repository: string, d: Digest): Promise<void> {
    const [link, here] = await Promise.all([
      this.primaryLink(repository, d),
      this.dst.hasLayer(repository, d),
    ]);
    if (!link) {
      await this.dst.unlinkLayer(repository, d);
      return;
    }
    await this.ensureBlob(repository, d, here ? undefined : link);
  }

  /** The primary's layer link for `d` (verbatim), or undefined when it has none. */
  private async primaryLink(repository: string, d: Digest): Promise<Buffer | undefined> {
    try {
      return await this.primary.getBytes(Layout.layerLink(repository, d));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Blob `d` in the region, then the repository's link (`link`: the primary's, to write). */
  private async ensureBlob(repository: string, d: Digest, link?: Buffer): Promise<void> {
    const mode = await this.copy(d);
    if (mode !== 'skipped') objectsCopied.inc({ region: this.region, kind: 'blob' });
    if (link) await this.target.put(Layout.layerLink(repository, d), link, { size: link.length });
  }

  /**
   * A manifest: its revision, bytes and whether the region already holds it are read in one
   * round trip. A manifest the region holds (its revision link is written last, after every
   * blob and child) is complete: its blobs are not checked again. The manifest's own bytes and
   * revision link are written from what was read, not fetched a second time.
   */
  /**
   * A manifest's state at the primary, made the region's: copied (its blobs and children first,
   * its revision link last) or removed. One job at a time per manifest, cluster-wide: a job that
   * read the manifest before a delete and wrote it after the delete's own job had removed it
   * would bring it back in this region for good (CI saw a deleted manifest still served).
   */
  syncManifest(repository: string, d: Digest, depth: number): Promise<void> {
    return this.mutex(`manifest:${repository}@${d.value}`, () =>
      this.syncManifestHeld(repository, d, depth),
    );
  }

  private async syncManifestHeld(repository: string, d: Digest, depth: number): Promise<void> {
    if (depth > 8) throw unrecoverable(`manifest nesting too deep at ${d.value}`);
    const [revBytes, bytes, here] = await Promise.all([
      this.readOrUndefined(Layout.revisionLink(repository, d)),
      this.readOrUndefined(Layout.blobData(d)),
      this.dst.hasRevision(repository, d),
    ]);
    if (!revBytes) {
      // Soft delete (ADR 0017): the primary's tombstone comes first, as on the primary.
      const tomb = await this.src.readTombstone(repository, d);
      if (tomb) await this.dst.writeTombstone(repository, tomb);
      else if (await this.dst.readTombstone(repository, d))
        await this.dst.deleteTombstone(repository, d);
      await this.removeManifest(repository, d);
      return;
    }
    if (!bytes) throw unrecoverable(`manifest ${d.value} is gone from the primary`);
    if (digestOf(bytes, d.algorithm) !== d.value)
      throw unrecoverable(`manifest ${d.value} at the primary does not match its digest`);
    // Restored on the primary: the region's tombstone goes once the manifest is back.
    // (and only once the primary's is gone, re-read now: a job that saw the manifest before a
    // delete must not remove the tombstone that delete wrote).
    const restored = async () => {
      if (!(await this.dst.readTombstone(repository, d))) return;
      if (!(await this.src.readTombstone(repository, d)))
        await this.dst.deleteTombstone(repository, d);
    };
    const rev = JSON.parse(revBytes.toString('utf8')) as { mediaType: string };
    const plan = manifestPlan(repository, d, parseManifest(bytes, rev.mediaType));
    if (!here) {
      await Promise.all([
        ...plan.blobs.map((b) => this.ensureBlobIfLinked(repository, b)),
        ...plan.children.map((c) => this.syncManifest(repository, c, depth + 1)),
      ]);
    }
    for (const { kind, key } of plan.keys) {
      if (await exists(this.target, key)) continue;
      if (kind === 'content') await this.putManifestBytes(d, key, bytes);
      else if (kind === 'revision') {
        await this.target.put(key, revBytes, { size: revBytes.length });
        objectsCopied.inc({ region: this.region, kind: 'manifest' });
      } else await copySmall(this.primary, this.target, key);
    }
    await restored();
  }

  /** A manifest's bytes into the region, once: under the digest's copy lock, as a blob copy. */
  private putManifestBytes(d: Digest, key: string, bytes: Buffer): Promise<void> {
    return this.mutex(`blob:${d.value}`, async () => {
      if (await exists(this.target, key)) return;
      await this.target.put(key, bytes, { size: bytes.length });
      bytesCopied.inc({ region: this.region, mode: 'streamed' }, bytes.length);
    });
  }

  private async readOrUndefined(key: string): Promise<Buffer | undefined> {
    try {
      return await this.primary.getBytes(key);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async ensureBlobIfLinked(repository: string, d: Digest): Promise<void> {
    // Already linked here (a blob job or a fallback copy got there first): nothing to ask.
    if ((await this.dst.hasLayer(repository, d)) && (await this.dst.hasBlob(d))) return;
    // A blob referenced by a manifest may also be served through a manifest revision link.
    const link = await this.primaryLink(repository, d);
    if (link) await this.ensureBlob(repository, d, link);
    else if (await this.src.hasBlob(d)) await this.copy(d);
  }

  private async removeManifest(repository: string, d: Digest): Promise<void> {
    if (!(await this.dst.hasRevision(repository, d))) return;
    await this.dst.removeManifest(repository, d, await this.dst.readSubject(d));
  }

  /** A tag: never moved backwards (by `seq`), and only once its manifest is complete here. */
  /** A tag's state at the primary, made the region's; one job at a time per tag (as manifests). */
  syncTag(repository: string, tag: string): Promise<void> {
    return this.mutex(`tag:${repository}:${tag}`, () => this.syncTagHeld(repository, tag));
  }

  private async syncTagHeld(repository: string, tag: string): Promise<void> {
    const [primary, local] = await Promise.all([
      this.src.readTag(repository, tag),
      this.dst.readTag(repository, tag),
    ]);
    if (!primary) {
      if (local) await this.dst.deleteTag(repository, tag);
      return;
    }
    if (
      local &&
      (local.seq > primary.seq || (local.seq === primary.seq && local.digest === primary.digest))
    )
      return;
    // A manifest whose revision link is here is complete here (it is written last).
    const d = parseDigest(primary.digest);
    if (!(await this.dst.hasRevision(repository, d))) await this.syncManifest(repository, d, 0);
    await this.dst.writeTag(repository, tag, primary);
    objectsCopied.inc({ region: this.region, kind: 'tag' });
  }
}

/** The primary's store, counting each call a job makes to it (a round trip across the WAN). */
function countRequests(store: ObjectStore, region: string): ObjectStore {
  const counter = sourceRequests.labels({ region });
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'close') return v;
      return (...args: unknown[]) => {
        counter.inc();
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
