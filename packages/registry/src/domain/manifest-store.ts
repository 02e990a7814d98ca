import {
  digestOf,
  isDigestLike,
  isValidTag,
  OciError,
  parseDigest,
  parseManifest,
  type Digest,
  type ParsedManifest,
} from '@meridian/oci';
import {
  Layout,
  exists,
  isNotFound,
  listAllKeys,
  putInOrder,
  readJson,
  type ObjectStore,
  type PutEntry,
  type ReferrerRecord,
  type RevisionRecord,
  type TagRecord,
} from '@meridian/storage';
import type { RegistryEvents } from './events';
import type { MetadataCache } from './metadata-cache';
import { translated } from './storage-errors';
import { isLinked } from './blob-store';
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
  constructor(
    private readonly store: ObjectStore,
    private readonly tags: TagStore,
    private readonly cache: MetadataCache,
    private readonly events: RegistryEvents,
  ) {}

  /** Resolves a tag or digest to its revision record. Throws `MANIFEST_UNKNOWN`. */
  resolve(repository: string, reference: string): Promise<RevisionRecord> {
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

  /** The manifest's bytes, media type and digest. Throws `MANIFEST_UNKNOWN`. */
  get(repository: string, reference: string): Promise<StoredManifest> {
    return translated(async () => {
      const rev = await this.resolveLocal(repository, reference);
      let bytes = this.cache.content.get(rev.digest);
      if (!bytes) {
        try {
          bytes = await this.store.getBytes(Layout.blobData(parseDigest(rev.digest)));
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
      const parsed = parseManifest(bytes, contentType);
      const digest = parseDigest(digestOf(bytes, refDigest?.algorithm ?? 'sha256'));
      if (refDigest && refDigest.value !== digest.value)
        throw new OciError('DIGEST_INVALID', 'manifest digest does not match the reference', {
          expected: refDigest.value,
          actual: digest.value,
        });
      const blobKey = Layout.blobData(digest);
      const [, stored] = await Promise.all([
        this.verifyReferences(repository, parsed),
        exists(this.store, blobKey),
      ]);

      // Visible in order: content, revision, referrer entry, then the tag (one `putInOrder`:
      // the writes and their fsyncs overlap, the renames keep this order).
      const rev: RevisionRecord = {
        digest: digest.value,
        mediaType: parsed.mediaType,
        size: bytes.length,
      };
      const entries: PutEntry[] = [];
      if (!stored) entries.push({ key: blobKey, body: bytes });
      entries.push({
        key: Layout.revisionLink(repository, digest),
        body: Buffer.from(JSON.stringify(rev)),
      });
      if (parsed.subject) entries.push(referrerEntry(repository, parsed, rev));
      const tag = byDigest ? undefined : this.tags.prepare(repository, reference, digest.value);
      if (tag) entries.push(tag.entry);
      await putInOrder(this.store, entries);
      this.cache.content.set(digest.value, bytes);
      this.cache.revisions.set(revKey(repository, digest.value), rev);
      await this.events.emit({
        type: 'manifestPut',
        repository,
        digest: digest.value,
        mediaType: parsed.mediaType,
        subject: parsed.subject?.digest,
        at: Date.now(),
      });
      if (tag) await this.tags.stored(repository, reference, tag.rec);
      return { digest: digest.value, subject: parsed.subject?.digest };
    });
  }

  /** Deletes a tag (by tag) or a manifest and every tag pointing at it (by digest). */
  delete(repository: string, reference: string): Promise<void> {
    return translated(async () => {
      if (!isDigestLike(reference)) {
        if (!(await this.tags.delete(repository, reference))) throw manifestUnknown(reference);
        return;
      }
      const d = parseDigest(reference);
      const rev = await this.revision(repository, d, false);
      if (!rev) throw manifestUnknown(reference);
      const subject = await this.subjectOf(d);
      if (subject) await this.store.delete(Layout.referrer(repository, subject, d));
      await this.store.delete(Layout.revisionLink(repository, d));
      this.cache.revisions.set(revKey(repository, d.value), false);
      await this.events.emit({
        type: 'manifestDeleted',
        repository,
        digest: d.value,
        at: Date.now(),
      });
      await this.tags.deleteTagsPointingAt(repository, d.value);
    });
  }

  /** The referrers index entries for `subject`, optionally filtered by artifact type. */
  referrers(repository: string, subject: string, artifactType?: string): Promise<ReferrerRecord[]> {
    return translated(async () => {
      const s = parseDigest(subject);
      const keys = await listAllKeys(this.store, Layout.referrersOf(repository, s));
      const records = await Promise.all(keys.map((k) => readJson<ReferrerRecord>(this.store, k)));
      return records.filter(
        (r): r is ReferrerRecord =>
          r !== undefined && (artifactType === undefined || r.artifactType === artifactType),
      );
    });
  }

  private async subjectOf(d: Digest): Promise<Digest | undefined> {
    try {
      const body = JSON.parse((await this.store.getBytes(Layout.blobData(d))).toString('utf8')) as {
        subject?: { digest?: string };
      };
      const s = body.subject?.digest;
      return s ? parseDigest(s) : undefined;
    } catch {
      return undefined;
    }
  }

  private async verifyReferences(repository: string, parsed: ParsedManifest): Promise<void> {
    const missing: string[] = [];
    await Promise.all([
      ...parsed.blobs.map(async (b) => {
        if (!(await isLinked(this.store, repository, parseDigest(b.digest))))
          missing.push(b.digest);
      }),
      ...parsed.children.map(async (c) => {
        if (!(await exists(this.store, Layout.revisionLink(repository, parseDigest(c.digest)))))
          missing.push(c.digest);
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
    const rev = await readJson<RevisionRecord>(this.store, Layout.revisionLink(repository, d));
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

/** The referrers-index entry of a manifest that has a `subject`. */
function referrerEntry(repository: string, parsed: ParsedManifest, rev: RevisionRecord): PutEntry {
  const subject = parseDigest(parsed.subject!.digest);
  const record: ReferrerRecord = { mediaType: rev.mediaType, digest: rev.digest, size: rev.size };
  if (parsed.artifactType) record.artifactType = parsed.artifactType;
  if (parsed.annotations) record.annotations = parsed.annotations;
  return {
    key: Layout.referrer(repository, subject, parseDigest(rev.digest)),
    body: Buffer.from(JSON.stringify(record)),
  };
}
