import type { Readable } from 'node:stream';
import { parseDigest, type Digest, type ParsedManifest } from '@meridian/oci';
import { isNotFound } from './errors';
import {
  Layout,
  parseKey,
  type LayoutKey,
  type LockRecord,
  type LockTarget,
  type ReferrerRecord,
  type TombstoneRecord,
  type RevisionRecord,
  type TagRecord,
} from './layout';
import { exists, putVerified, readJson } from './object-helpers';
import type { ObjectInfo, ObjectStore, PutEntry } from './object-store';
import {
  listAllKeys,
  listAllObjects,
  hasOwnState,
  listChildPrefixes,
  listRepositories,
  listRepositoryEntries,
  type RepositoryEntry,
} from './walk';

/** One object of a manifest: its content, its revision link, its referrer entry. */
export interface ManifestKey {
  kind: 'content' | 'revision' | 'referrer';
  key: string;
}

/**
 * What makes manifest `digest` visible in a repository, in the visibility order every writer
 * follows (the push, a replication copy): first its `blobs` (layer links), then its `children`
 * (complete manifests of an index), then `keys` in order (content, revision link, referrer
 * entry); a tag pointing at it comes last.
 */
export interface ManifestPlan {
  repository: string;
  digest: Digest;
  blobs: Digest[];
  children: Digest[];
  /** The referrers subject, for a manifest that has one. */
  subject?: Digest;
  keys: ManifestKey[];
}

/** A key of a repository's own state (`LayoutKey` without blob content). */
export type RepositoryKey = Exclude<LayoutKey, { kind: 'blob' }>;

type PlanInput = Pick<ParsedManifest, 'blobs' | 'children' | 'subject'>;

/** The manifest's `ManifestPlan` (no I/O). */
export function manifestPlan(repository: string, digest: Digest, parsed: PlanInput): ManifestPlan {
  const subject = parsed.subject ? parseDigest(parsed.subject.digest) : undefined;
  const keys: ManifestKey[] = [
    { kind: 'content', key: Layout.blobData(digest) },
    { kind: 'revision', key: Layout.revisionLink(repository, digest) },
  ];
  if (subject) keys.push({ kind: 'referrer', key: Layout.referrer(repository, subject, digest) });
  return {
    repository,
    digest,
    blobs: parsed.blobs.map((b) => parseDigest(b.digest)),
    children: parsed.children.map((c) => parseDigest(c.digest)),
    subject,
    keys,
  };
}

/** The write that points `tag` at `rec.digest`. */
export function tagEntry(
  repository: string,
  tag: string,
  rec: TagRecord,
): PutEntry & { body: Buffer } {
  return { key: Layout.tagCurrent(repository, tag), body: Buffer.from(JSON.stringify(rec)) };
}

/** The write that makes stored blob `digest` servable from `repository` (its layer link). */
export function layerLinkEntry(
  repository: string,
  digest: Digest,
  size: number,
): PutEntry & { body: Buffer } {
  return {
    key: Layout.layerLink(repository, digest),
    body: Buffer.from(JSON.stringify({ digest: digest.value, size })),
  };
}

/** The referrers-index record of a manifest with a subject. */
export function referrerRecord(
  rev: RevisionRecord,
  parsed: Pick<ParsedManifest, 'artifactType' | 'annotations'>,
): ReferrerRecord {
  const record: ReferrerRecord = { mediaType: rev.mediaType, digest: rev.digest, size: rev.size };
  if (parsed.artifactType) record.artifactType = parsed.artifactType;
  if (parsed.annotations) record.annotations = parsed.annotations;
  return record;
}

/** The key's modification time; undefined when it does not exist. */
async function modifiedAt(store: ObjectStore, key: string): Promise<Date | undefined> {
  try {
    return (await store.head(key)).modified;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Compares strings by UTF-16 code units (the order tag and catalog listings use). */
function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A repository's state over one object store: the one place that knows which keys hold
 * links, revisions, tags and referrers, how to list them, and the order they become visible.
 * The registry's stores, replication's copies and the reconciler's inventory all go through it,
 * so a new kind of key (a lock, a tombstone, a last-pull record) is added here.
 */
export class RepositoryLayout {
  constructor(readonly store: ObjectStore) {}

  // ——— reads ———

  hasBlob(d: Digest): Promise<boolean> {
    return exists(this.store, Layout.blobData(d));
  }

  /** The stored bytes of blob (or manifest) `d`; throws the store's `NotFound`. */
  readBlob(d: Digest): Promise<Buffer> {
    return this.store.getBytes(Layout.blobData(d));
  }

  hasLayer(repository: string, d: Digest): Promise<boolean> {
    return exists(this.store, Layout.layerLink(repository, d));
  }

  hasRevision(repository: string, d: Digest): Promise<boolean> {
    return exists(this.store, Layout.revisionLink(repository, d));
  }

  /** Whether the repository may serve `d` as a blob: a layer, or a manifest fetched as a blob. */
  async isLinked(repository: string, d: Digest): Promise<boolean> {
    const [layer, revision] = await Promise.all([
      this.hasLayer(repository, d),
      this.hasRevision(repository, d),
    ]);
    return layer || revision;
  }

  readRevision(repository: string, d: Digest): Promise<RevisionRecord | undefined> {
    return readJson<RevisionRecord>(this.store, Layout.revisionLink(repository, d));
  }

  readTag(repository: string, tag: string): Promise<TagRecord | undefined> {
    return readJson<TagRecord>(this.store, Layout.tagCurrent(repository, tag));
  }

  /** When the tag's record was last written (replication status); undefined when absent. */
  tagModified(repository: string, tag: string): Promise<Date | undefined> {
    return modifiedAt(this.store, Layout.tagCurrent(repository, tag));
  }

  /** When manifest `d`'s revision link was last written; undefined when absent. */
  revisionModified(repository: string, d: Digest): Promise<Date | undefined> {
    return modifiedAt(this.store, Layout.revisionLink(repository, d));
  }

  /**
   * The referrers subject of stored manifest `d`; undefined when its content is missing or is
   * not JSON (other errors propagate).
   */
  async readSubject(d: Digest): Promise<Digest | undefined> {
    try {
      const body = JSON.parse((await this.readBlob(d)).toString('utf8')) as {
        subject?: { digest?: string };
      };
      const s = body.subject?.digest;
      return s ? parseDigest(s) : undefined;
    } catch (err) {
      if (isNotFound(err) || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  /** The blob's stored object (size, modification time); undefined when absent. */
  blobInfo(d: Digest): Promise<ObjectInfo | undefined> {
    return headOrUndefined(this.store, Layout.blobData(d));
  }

  /** The repository's layer link to `d` (its modification time is when it was last confirmed). */
  layerInfo(repository: string, d: Digest): Promise<ObjectInfo | undefined> {
    return headOrUndefined(this.store, Layout.layerLink(repository, d));
  }

  /** The lock record of a repository, tag or manifest; undefined when none was ever set. */
  readLock(repository: string, target: LockTarget): Promise<LockRecord | undefined> {
    return readJson<LockRecord>(this.store, Layout.lock(repository, target));
  }

  /** Every lock record of a repository (one listing; records that vanish are skipped). */
  async listLocks(repository: string): Promise<{ target: LockTarget; record: LockRecord }[]> {
    const keys = await listAllKeys(this.store, Layout.locksRoot(repository));
    const out = await Promise.all(
      keys.map(async (key) => {
        const k = parseKey(key);
        if (k?.kind !== 'lock' || k.repository !== repository) return undefined;
        const record = await readJson<LockRecord>(this.store, key);
        return record ? { target: k.target, record } : undefined;
      }),
    );
    return out.filter((x): x is { target: LockTarget; record: LockRecord } => x !== undefined);
  }

  // ——— lists ———

  /** Every stored blob (manifests included) with its size and modification time. */
  async listBlobs(): Promise<{ digest: Digest; size: number; modified: Date }[]> {
    const out: { digest: Digest; size: number; modified: Date }[] = [];
    for (const o of await listAllObjects(this.store, Layout.blobsRoot)) {
      const k = parseKey(o.key);
      if (k?.kind !== 'blob') continue;
      try {
        out.push({ digest: parseDigest(k.digest), size: o.size, modified: o.modified });
      } catch {
        // Not a digest this registry writes: not ours to judge.
      }
    }
    return out;
  }

  /**
   * Every digest the repository links (layer links and manifest revisions), from listings:
   * a few list calls per repository instead of a HEAD per digest.
   */
  async listLinkedDigests(repository: string): Promise<Set<string>> {
    const out = new Set<string>();
    const roots = [
      `${Layout.repository(repository)}_layers/`,
      `${Layout.repository(repository)}_manifests/revisions/`,
    ];
    for (const root of roots)
      for (const alg of await listChildPrefixes(this.store, root))
        for (const hex of await listChildPrefixes(this.store, alg))
          out.add(`${alg.slice(root.length, -1)}:${hex.slice(alg.length, -1)}`);
    return out;
  }

  /** Every manifest revision with its link's time: one listing of the revisions, nothing else. */
  async listRevisionTimes(repository: string): Promise<{ digest: string; modified: Date }[]> {
    const prefix = `${Layout.repository(repository)}_manifests/revisions/`;
    const out: { digest: string; modified: Date }[] = [];
    for (const o of await listAllObjects(this.store, prefix)) {
      const k = parseKey(o.key);
      if (k?.kind === 'revision' && k.repository === repository)
        out.push({ digest: k.digest, modified: o.modified });
    }
    return out;
  }

  /** Like `scan`, with each key's modification time. */
  async scanObjects(repository: string): Promise<{ key: RepositoryKey; modified: Date }[]> {
    const objects = await listAllObjects(this.store, Layout.repository(repository));
    const out: { key: RepositoryKey; modified: Date }[] = [];
    for (const o of objects) {
      const k = parseKey(o.key);
      if (k && k.kind !== 'blob' && k.repository === repository)
        out.push({ key: k, modified: o.modified });
    }
    return out;
  }

  /** Every tag of a repository, sorted. */
  async listTags(repository: string): Promise<string[]> {
    const root = Layout.tagsRoot(repository);
    const tags = (await listChildPrefixes(this.store, root)).map((p) => p.slice(root.length, -1));
    return tags.sort(compareBytes);
  }

  /** Digests of every manifest revision of a repository. */
  async listRevisions(repository: string): Promise<string[]> {
    return (await this.scan(repository)).flatMap((k) => (k.kind === 'revision' ? [k.digest] : []));
  }

  /** Digests of every blob linked into a repository. */
  async listLayers(repository: string): Promise<string[]> {
    return (await this.scan(repository)).flatMap((k) => (k.kind === 'layer' ? [k.digest] : []));
  }

  /** The referrers-index records for `subject` (entries that vanish mid-listing are skipped). */
  async listReferrers(repository: string, subject: Digest): Promise<ReferrerRecord[]> {
    const keys = await listAllKeys(this.store, Layout.referrersOf(repository, subject));
    const records = await Promise.all(keys.map((k) => readJson<ReferrerRecord>(this.store, k)));
    return records.filter((r): r is ReferrerRecord => r !== undefined);
  }

  /**
   * Every key of a repository's state, parsed; keys the layout does not know, and those of
   * repositories nested under this name (`app/sub` under `app`), are left out.
   */
  async scan(repository: string): Promise<RepositoryKey[]> {
    const keys = await listAllKeys(this.store, Layout.repository(repository));
    return keys
      .map(parseKey)
      .filter(
        (k): k is RepositoryKey =>
          k !== undefined && k.kind !== 'blob' && k.repository === repository,
      );
  }

  /** Repository names, unsorted. */
  listRepositories(): Promise<string[]> {
    return listRepositories(this.store);
  }

  /** Repository names with the kinds of state each holds (`_manifests`, `_locks`…), unsorted. */
  listRepositoryEntries(): Promise<RepositoryEntry[]> {
    return listRepositoryEntries(this.store);
  }

  /** Whether the repository has state of its own (`hasOwnState`). */
  repositoryExists(repository: string): Promise<boolean> {
    return hasOwnState(this.store, repository);
  }

  // ——— writes ———

  /**
   * Stores blob `d`'s bytes from `body`, visible only if they hash to `d` (a replica keeping
   * what it fetched from the primary); throws `DigestMismatchError` otherwise.
   */
  writeBlob(d: Digest, body: Readable, size?: number): Promise<void> {
    return putVerified(this.store, Layout.blobData(d), body, d, size);
  }

  /**
   * The writes that store a manifest, in visibility order (for one `putInOrder`): its content
   * (unless `contentStored`), revision link and referrer entry, then `tag` when given. Its
   * blobs and children must already be visible.
   */
  manifestWrites(
    plan: ManifestPlan,
    m: {
      bytes: Buffer;
      revision: RevisionRecord;
      parsed: Pick<ParsedManifest, 'artifactType' | 'annotations'>;
      contentStored: boolean;
      tag?: PutEntry;
    },
  ): PutEntry[] {
    const entries: PutEntry[] = [];
    for (const k of plan.keys) {
      if (k.kind === 'content') {
        if (!m.contentStored) entries.push({ key: k.key, body: m.bytes });
      } else if (k.kind === 'revision') {
        entries.push({ key: k.key, body: Buffer.from(JSON.stringify(m.revision)) });
      } else {
        const record = referrerRecord(m.revision, m.parsed);
        entries.push({ key: k.key, body: Buffer.from(JSON.stringify(record)) });
      }
    }
    if (m.tag) entries.push(m.tag);
    return entries;
  }

  /**
   * Hides manifest `d` (against the visibility order: its referrer entry, then its revision
   * link). Its content stays: other repositories may link it.
   */
  async removeManifest(repository: string, d: Digest, subject: Digest | undefined): Promise<void> {
    if (subject) await this.store.delete(Layout.referrer(repository, subject, d));
    await this.store.delete(Layout.revisionLink(repository, d));
  }

  /** Stores a lock record (the caller orders records by `seq`). */
  async writeLock(repository: string, target: LockTarget, rec: LockRecord): Promise<void> {
    await this.store.put(Layout.lock(repository, target), Buffer.from(JSON.stringify(rec)));
  }

  /** Removes a lock record (a region holding one the primary does not). */
  deleteLock(repository: string, target: LockTarget): Promise<void> {
    return this.store.delete(Layout.lock(repository, target));
  }

  async writeTag(repository: string, tag: string, rec: TagRecord): Promise<void> {
    const e = tagEntry(repository, tag, rec);
    await this.store.put(e.key, e.body);
  }

  /** Deletes a tag; false when it did not exist. */
  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const key = Layout.tagCurrent(repository, tag);
    if (!(await exists(this.store, key))) return false;
    await this.store.delete(key);
    return true;
  }

  /**
   * Re-confirms the repository's link to `d` (rewrites it, so its modification time is now): a
   * reference to an old link protects it from garbage collection for another grace period.
   */
  async touchLayer(repository: string, d: Digest): Promise<void> {
    const key = Layout.layerLink(repository, d);
    await this.store.put(key, await this.store.getBytes(key));
  }

  /** Deletes blob `d`'s bytes (garbage collection only: every reference must be gone). */
  deleteBlob(d: Digest): Promise<void> {
    return this.store.delete(Layout.blobData(d));
  }

  readTombstone(repository: string, d: Digest): Promise<TombstoneRecord | undefined> {
    return readJson<TombstoneRecord>(this.store, Layout.tombstone(repository, d));
  }

  async writeTombstone(repository: string, rec: TombstoneRecord): Promise<void> {
    const key = Layout.tombstone(repository, parseDigest(rec.digest));
    await this.store.put(key, Buffer.from(JSON.stringify(rec)));
  }

  deleteTombstone(repository: string, d: Digest): Promise<void> {
    return this.store.delete(Layout.tombstone(repository, d));
  }

  /** The repository's soft-deleted manifests (records that vanish mid-listing are skipped). */
  async listTombstones(repository: string): Promise<TombstoneRecord[]> {
    const keys = await listAllKeys(this.store, Layout.tombstonesRoot(repository));
    const recs = await Promise.all(keys.map((k) => readJson<TombstoneRecord>(this.store, k)));
    return recs.filter((r): r is TombstoneRecord => r !== undefined);
  }

  /** Removes the repository's link to blob `d`. */
  unlinkLayer(repository: string, d: Digest): Promise<void> {
    return this.store.delete(Layout.layerLink(repository, d));
  }
}

async function headOrUndefined(store: ObjectStore, key: string): Promise<ObjectInfo | undefined> {
  try {
    return await store.head(key);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
