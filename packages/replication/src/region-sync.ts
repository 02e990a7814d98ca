import { UnrecoverableError } from 'bullmq';
import { parseDigest, parseManifest, type Digest } from '@meridian/oci';
import {
  Layout,
  exists,
  isNotFound,
  readJson,
  type ObjectStore,
  type RevisionRecord,
  type TagRecord,
} from '@meridian/storage';
import { copyBlob, copySmall, type CopyMode } from './copy';
import { objectsCopied } from './metrics';
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
  constructor(
    readonly region: string,
    private readonly primary: ObjectStore,
    private readonly target: ObjectStore,
    /** Serialises copies of one digest into the region, so a shared base is copied once. */
    private readonly mutex: Mutex = noMutex,
  ) {}

  private async copy(d: Digest): Promise<CopyMode> {
    // Objects appear atomically, so one already here is complete: skip the lock round trips.
    if (await exists(this.target, Layout.blobData(d))) return 'skipped';
    return this.mutex(`blob:${d.value}`, () => copyBlob(this.primary, this.target, d, this.region));
  }

  async apply(t: SyncTarget): Promise<void> {
    switch (t.kind) {
      case 'blob':
        return this.syncBlob(t.repository, parseDigest(t.digest));
      case 'manifest':
        return this.syncManifest(t.repository, parseDigest(t.digest), 0);
      case 'tag':
        return this.syncTag(t.repository, t.tag);
    }
  }

  /** A repository's blob: bytes first (once per region), then the repository's link. */
  async syncBlob(repository: string, d: Digest): Promise<void> {
    const link = Layout.layerLink(repository, d);
    if (!(await exists(this.primary, link))) {
      await this.target.delete(link);
      return;
    }
    await this.ensureBlob(repository, d);
  }

  private async ensureBlob(repository: string, d: Digest): Promise<void> {
    const mode = await this.copy(d);
    if (mode !== 'skipped') objectsCopied.inc({ region: this.region, kind: 'blob' });
    const link = Layout.layerLink(repository, d);
    if (!(await exists(this.target, link))) await copySmall(this.primary, this.target, link);
  }

  async syncManifest(repository: string, d: Digest, depth: number): Promise<void> {
    if (depth > 8) throw new UnrecoverableError(`manifest nesting too deep at ${d.value}`);
    const revKey = Layout.revisionLink(repository, d);
    const rev = await readJson<RevisionRecord>(this.primary, revKey);
    if (!rev) {
      await this.removeManifest(repository, d);
      return;
    }
    let bytes: Buffer;
    try {
      bytes = await this.primary.getBytes(Layout.blobData(d));
    } catch (err) {
      if (isNotFound(err))
        throw new UnrecoverableError(`manifest ${d.value} is gone from the primary`);
      throw err;
    }
    const parsed = parseManifest(bytes, rev.mediaType);
    await Promise.all(
      parsed.blobs.map((b) => this.ensureBlobIfLinked(repository, parseDigest(b.digest))),
    );
    for (const child of parsed.children)
      await this.syncManifest(repository, parseDigest(child.digest), depth + 1);
    await this.copy(d);
    if (!(await exists(this.target, revKey))) {
      await copySmall(this.primary, this.target, revKey);
      objectsCopied.inc({ region: this.region, kind: 'manifest' });
    }
    if (parsed.subject) {
      const refKey = Layout.referrer(repository, parseDigest(parsed.subject.digest), d);
      if (!(await exists(this.target, refKey))) await copySmall(this.primary, this.target, refKey);
    }
  }

  private async ensureBlobIfLinked(repository: string, d: Digest): Promise<void> {
    // A blob referenced by a manifest may also be served through a manifest revision link.
    if (await exists(this.primary, Layout.layerLink(repository, d)))
      await this.ensureBlob(repository, d);
    else if (await exists(this.primary, Layout.blobData(d))) await this.copy(d);
  }

  private async removeManifest(repository: string, d: Digest): Promise<void> {
    const revKey = Layout.revisionLink(repository, d);
    if (!(await exists(this.target, revKey))) return;
    try {
      const body = JSON.parse(
        (await this.target.getBytes(Layout.blobData(d))).toString('utf8'),
      ) as {
        subject?: { digest?: string };
      };
      if (body.subject?.digest)
        await this.target.delete(Layout.referrer(repository, parseDigest(body.subject.digest), d));
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof SyntaxError)) throw err;
    }
    await this.target.delete(revKey);
  }

  /** A tag: never moved backwards (by `seq`), and only once its manifest is complete here. */
  async syncTag(repository: string, tag: string): Promise<void> {
    const key = Layout.tagCurrent(repository, tag);
    const [primary, local] = await Promise.all([
      readJson<TagRecord>(this.primary, key),
      readJson<TagRecord>(this.target, key),
    ]);
    if (!primary) {
      if (local) await this.target.delete(key);
      return;
    }
    if (
      local &&
      (local.seq > primary.seq || (local.seq === primary.seq && local.digest === primary.digest))
    )
      return;
    await this.syncManifest(repository, parseDigest(primary.digest), 0);
    await this.target.put(key, Buffer.from(JSON.stringify(primary)));
    objectsCopied.inc({ region: this.region, kind: 'tag' });
  }
}
