import {
  digestOf,
  isDigestLike,
  isValidTag,
  OciError,
  parseDigest,
  parsePushedManifest,
  type Digest,
} from '@meridian/oci';
import {
  RepositoryLayout,
  isNotFound,
  manifestPlan,
  putInOrder,
  type ManifestPlan,
  type ObjectStore,
  type ReferrerRecord,
  type RevisionRecord,
  type TagRecord,
} from '@meridian/storage';
import { blobLock, repoLock, type ReferencePolicy } from './blob-store';
import { ContentGuard } from './content-guard';
import type { RegistryEvents } from './events';
import { LockStore } from './lock-store';
import type { MetadataCache } from './metadata-cache';
import type { PullRecorder } from './pull-recorder';
import { translated } from './storage-errors';
import type { TagStore } from './tag-store';

export interface StoredManifest extends RevisionRecord {
  bytes: Buffer;
}

export interface PutManifestResult {
  digest: string;
  subject?: string;
}

/** Manifests by tag and digest: validation on put, cached reads, referrer bookkeeping. */
export class ManifestStore {
  private readonly layout: RepositoryLayout;
  /** Where a pull (a manifest `GET`) is counted, when the region counts them. */
  pulls?: PullRecorder;
  /** Whether `peek` may answer: the plain store only (see there). */
  private readonly answersFromCache: boolean;

  constructor(
    private readonly store: ObjectStore,
    private readonly tags: TagStore,
    private readonly cache: MetadataCache,
    private readonly events: RegistryEvents,
    private readonly references: ReferencePolicy = { guard: new ContentGuard() },
    readonly locks: LockStore = new LockStore(store, cache, events),
  ) {
    this.layout = new RepositoryLayout(store);
    this.answersFromCache = new.target === ManifestStore;
  }

  /**
   * Resolves a tag or digest to its revision record. Throws `MANIFEST_UNKNOWN`, or `DENIED`
   * when a lock disables reading it.
   */
  async resolve(repository: string, reference: string): Promise<RevisionRecord> {
    const rev = await this.lookup(repository, reference);
    await this.assertReadable(repository, reference, rev.digest);
    return rev;
  }

  /**
   * `get` (or `resolve`, with `countPull` false) answered from this node's cache alone, without a
   * promise: only when every record the read consults is cached — the tag, the revision, the
   * bytes — and the repository is known to have no lock record, so the answer is the one `get`
   * would give. Undefined whenever storage or a decision is needed: then call `get`. Only the
   * plain store answers: a subclass (the replica's fallback) decides freshness itself, and a
   * plugin that wraps `get` (pull-through cache rules) wraps this too.
   */
  peek(repository: string, reference: string, countPull: boolean): StoredManifest | undefined {
    if (!this.answersFromCache || !this.locks.knownUnlocked(repository)) return undefined;
    let digest = reference;
    const byTag = !isDigestLike(reference);
    if (byTag) {
      if (!isValidTag(reference)) return undefined;
      const tag = this.tags.cached(repository, reference);
      if (!tag) return undefined;
      digest = tag.digest;
    }
    const rev = this.cache.revisions.get(revKey(repository, digest));
    if (!rev) return undefined;
    const bytes = this.cache.content.get(rev.digest);
    if (!bytes) return undefined;
    if (countPull) this.pulls?.record(repository, byTag ? reference : undefined, rev.digest);
    return { ...rev, bytes };
  }

  /**
   * The manifest's bytes, media type and digest. Throws `MANIFEST_UNKNOWN` or `DENIED`. Counts
   * a pull unless `countPull` is false (a replica's fallback read: the replica counts it).
   */
  async get(repository: string, reference: string, countPull = true): Promise<StoredManifest> {
    const m = await this.load(repository, reference);
    await this.assertReadable(repository, reference, m.digest);
    if (countPull)
      this.pulls?.record(repository, isDigestLike(reference) ? undefined : reference, m.digest);
    return m;
  }

  private assertReadable(repository: string, reference: string, digest: string): Promise<void> {
    return this.locks.assertReadable(
      repository,
      isDigestLike(reference) ? { digest } : { tag: reference, digest },
    );
  }

  /** `resolve` without the lock check (a replica's fallback overrides it). */
  protected lookup(repository: string, reference: string): Promise<RevisionRecord> {
    return translated(() => this.resolveLocal(repository, reference));
  }

  // Not overridable: subclasses (the replica's fallback) override `resolve` and `get`.
  private async resolveLocal(repository: string, reference: string): Promise<RevisionRecord> {
    const d = isDigestLike(reference)
      ? parseDigest(reference)
      : await this.digestOfTag(repository, reference);
    const rev = await this.revision(repository, d);
    if (!rev) throw manifestUnknown(reference);
    return rev;
  }

  /** `get` without the lock check (a replica's fallback overrides it). */
  protected load(repository: string, reference: string): Promise<StoredManifest> {
    return translated(async () => {
      const rev = await this.resolveLocal(repository, reference);
      let bytes = this.cache.content.get(rev.digest);
      if (!bytes) {
        try {
          bytes = await this.layout.readBlob(parseDigest(rev.digest));
        } catch (err) {
          if (isNotFound(err)) throw manifestUnknown(reference);
          throw err;
        }
        this.cache.content.set(rev.digest, bytes);
      }
      return { ...rev, bytes };
    });
  }

  put(
    repository: string,
    reference: string,
    bytes: Buffer,
    contentType?: string,
  ): Promise<PutManifestResult> {
    return translated(async () => {
      const byDigest = isDigestLike(reference);
      const refDigest = byDigest ? parseDigest(reference) : undefined;
      if (!byDigest && !isValidTag(reference))
        throw new OciError('MANIFEST_INVALID', `invalid tag: ${reference.slice(0, 140)}`);
      const parsed = parsePushedManifest(bytes, contentType);
      const digest = parseDigest(digestOf(bytes, refDigest?.algorithm ?? 'sha256'));
      if (refDigest && refDigest.value !== digest.value)
        throw new OciError('DIGEST_INVALID', 'manifest digest does not match the reference', {
          expected: refDigest.value,
          actual: digest.value,
        });
      await this.locks.assertPutAllowed(
        repository,
        digest.value,
        byDigest ? undefined : reference,
        async () => (await this.tags.get(repository, reference))?.digest,
      );
      const plan = manifestPlan(repository, digest, parsed);
      const tag = byDigest ? undefined : this.tags.prepare(repository, reference, digest.value);
      // What the tag pointed at before (untagged retention), read beside the write.
      const previous = tag
        ? this.tags.get(repository, reference).then(
            (r) => r?.digest,
            () => undefined,
          )
        : undefined;
      // Under the locks GC respects (ADR 0012): nothing this manifest names can be collected
      // between the check that it is here and the write that makes the manifest visible.
      const referenced = [digest, ...plan.blobs, ...plan.children].map((d) => d.value);
      const { guard } = this.references;
      const locks = [repoLock(repository), ...referenced.map(blobLock)];
      await guard.writing(repository, locks, async () => {
        const [, stored] = await Promise.all([
          this.verifyReferences(plan),
          this.layout.hasBlob(digest),
        ]);
        // Visible in order: content, revision, referrer entry, then the tag (one `putInOrder`:
        // the writes and their fsyncs overlap, the renames keep this order).
        const rev: RevisionRecord = {
          digest: digest.value,
          mediaType: parsed.mediaType,
          size: bytes.length,
        };
        const entries = this.layout.manifestWrites(plan, {
          bytes,
          revision: rev,
          parsed,
          contentStored: stored,
          tag: tag?.entry,
        });
        await putInOrder(this.store, entries);
        for (const d of referenced) guard.referenced(d);
        this.cache.content.set(digest.value, bytes);
        this.cache.revisions.set(revKey(repository, digest.value), rev);
      });
      await this.events.emit({
        type: 'manifestPut',
        repository,
        digest: digest.value,
        mediaType: parsed.mediaType,
        size: bytes.length,
        ...(tag && { tag: reference }),
        subject: parsed.subject?.digest,
        at: Date.now(),
      });
      if (tag) await this.tags.stored(repository, reference, tag.rec, await previous);
      return { digest: digest.value, subject: parsed.subject?.digest };
    });
  }

  /**
   * Soft delete (ADR 0017): when set, a deleted manifest is kept this long in the recycle bin
   * (a tombstone with its tags) before it is purged; GC counts it as a reference meanwhile.
   */
  softDeleteMs: number | undefined;

  /** Deletes a tag (by tag) or a manifest and every tag pointing at it (by digest). */
  delete(repository: string, reference: string): Promise<void> {
    return translated(async () => {
      if (!isDigestLike(reference)) {
        const rec = isValidTag(reference) ? await this.tags.get(repository, reference) : undefined;
        if (rec) await this.locks.assertTagDeletable(repository, reference, rec.digest);
        if (!(await this.tags.delete(repository, reference))) throw manifestUnknown(reference);
        return;
      }
      const d = parseDigest(reference);
      const rev = await this.revision(repository, d, false);
      if (!rev) throw manifestUnknown(reference);
      await this.locks.assertManifestDeletable(repository, d.value, () =>
        this.tags.pointingAt(repository, d.value),
      );
      let expiresAt: string | undefined;
      if (this.softDeleteMs !== undefined) {
        // Into the recycle bin first (ADR 0017): a crash after it leaves a restorable manifest.
        const now = Date.now();
        expiresAt = new Date(now + this.softDeleteMs).toISOString();
        await this.layout.writeTombstone(repository, {
          digest: d.value,
          mediaType: rev.mediaType,
          size: rev.size,
          tags: await this.tags.pointingAt(repository, d.value),
          deletedAt: new Date(now).toISOString(),
          expiresAt,
        });
      }
      const subject = await this.layout.readSubject(d).catch(() => undefined);
      await this.layout.removeManifest(repository, d, subject);
      this.cache.revisions.set(revKey(repository, d.value), false);
      await this.events.emit({
        type: 'manifestDeleted',
        repository,
        digest: d.value,
        ...(expiresAt !== undefined && { softDeleted: true, expiresAt }),
        at: Date.now(),
      });
      await this.tags.deleteTagsPointingAt(repository, d.value);
    });
  }

  /** The referrers index entries for `subject`, optionally filtered by artifact type. */
  referrers(repository: string, subject: string, artifactType?: string): Promise<ReferrerRecord[]> {
    return translated(async () => {
      const records = await this.layout.listReferrers(repository, parseDigest(subject));
      const locks = await this.locks.of(repository);
      return records.filter(
        (r) =>
          (artifactType === undefined || r.artifactType === artifactType) &&
          locks.manifests.get(r.digest)?.listEnabled !== false,
      );
    });
  }

  /** The first step of the visibility order: the manifest's blobs and children are here. */
  private async verifyReferences({ repository, blobs, children }: ManifestPlan): Promise<void> {
    const missing: string[] = [];
    const touchAfter = this.references.touchAfterMs;
    await Promise.all([
      ...blobs.map(async (b) => {
        const link = await this.layout.layerInfo(repository, b);
        if (link) {
          // Re-confirm an old link: the manifest now references it (the caller holds the locks).
          if (touchAfter !== undefined && Date.now() - link.modified.getTime() > touchAfter)
            await this.layout.touchLayer(repository, b);
        } else if (!(await this.layout.hasRevision(repository, b))) missing.push(b.value);
      }),
      ...children.map(async (c) => {
        if (!(await this.layout.hasRevision(repository, c))) missing.push(c.value);
      }),
    ]);
    if (missing.length > 0)
      throw new OciError(
        'MANIFEST_BLOB_UNKNOWN',
        `manifest references content unknown to this repository: ${missing[0]}`,
        { digests: missing },
      );
  }

  private async digestOfTag(repository: string, tag: string): Promise<Digest> {
    if (!isValidTag(tag)) throw manifestUnknown(tag);
    const rec: TagRecord | undefined = await this.tags.get(repository, tag);
    if (!rec) throw manifestUnknown(tag);
    return parseDigest(rec.digest);
  }

  private async revision(
    repository: string,
    d: Digest,
    useCache = true,
  ): Promise<RevisionRecord | undefined> {
    const key = revKey(repository, d.value);
    if (useCache && this.cache.enabled) {
      const hit = this.cache.revisions.get(key);
      if (hit !== undefined) return hit || undefined;
    }
    const rev = await this.layout.readRevision(repository, d);
    this.cache.revisions.set(key, rev ?? false);
    return rev;
  }
}

function revKey(repository: string, digest: string): string {
  return `${repository}@${digest}`;
}

export function manifestUnknown(reference: string): OciError {
  return new OciError(
    'MANIFEST_UNKNOWN',
    `manifest unknown to registry: ${reference.slice(0, 140)}`,
  );
}
