import type { Digest } from '@meridian/oci';

/**
 * The registry's key layout — identical in every region, so replication is "make key K in
 * region R equal to key K in the primary". Names and tags are validated by the OCI grammar
 * before they reach here, and every key is validated again by the driver wrapper.
 */
export const Layout = {
  blobsRoot: 'blobs/',
  blobData: (d: Digest) => `blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}/data`,
  repositoriesRoot: 'repositories/',
  repository: (repo: string) => `repositories/${repo}/`,
  layerLink: (repo: string, d: Digest) =>
    `repositories/${repo}/_layers/${d.algorithm}/${d.hex}/link`,
  revisionLink: (repo: string, d: Digest) =>
    `repositories/${repo}/_manifests/revisions/${d.algorithm}/${d.hex}/link`,
  tagsRoot: (repo: string) => `repositories/${repo}/_manifests/tags/`,
  tagCurrent: (repo: string, tag: string) => `repositories/${repo}/_manifests/tags/${tag}/current`,
  referrersOf: (repo: string, subject: Digest) =>
    `repositories/${repo}/_referrers/${subject.algorithm}/${subject.hex}/`,
  referrer: (repo: string, subject: Digest, referrer: Digest) =>
    `repositories/${repo}/_referrers/${subject.algorithm}/${subject.hex}/${referrer.algorithm}-${referrer.hex}`,
  /** Soft-deleted manifests of a repository (the recycle bin): one tombstone per manifest. */
  tombstonesRoot: (repo: string) => `repositories/${repo}/_deleted/`,
  tombstone: (repo: string, d: Digest) => `repositories/${repo}/_deleted/${d.algorithm}/${d.hex}`,
  /** A repository's locks (ADR 0015): one record per locked repository, tag or manifest. */
  locksRoot: (repo: string) => `repositories/${repo}/_locks/`,
  lock: (repo: string, target: LockTarget) =>
    target.scope === 'repository'
      ? `repositories/${repo}/_locks/repository`
      : target.scope === 'tag'
        ? `repositories/${repo}/_locks/tags/${target.tag}`
        : `repositories/${repo}/_locks/manifests/${target.digest.replace(':', '/')}`,
  /**
   * When a repository's manifests and tags were last pulled in this region, and how often
   * (`UsageRecord`): region-local, never replicated; the primary aggregates every region's.
   */
  usage: (repo: string) => `_usage/${repo}/_pulls`,
  usageRoot: '_usage/',
  /** Staged writes (replication copies, replica fallbacks): never served, moved into place. */
  staging: (id: string) => `_replication/staging/${id}`,
  uploadsRoot: '_uploads/',
  upload: (id: string) => `_uploads/${id}/`,
  uploadState: (id: string) => `_uploads/${id}/state`,
  /**
   * A chunk of an upload, written once: `writer` (unique per write) keeps two writes at the same
   * offset from ever sharing a key, so the session state names exactly the bytes it hashed.
   */
  uploadChunk: (id: string, offset: number, writer?: string) =>
    `_uploads/${id}/chunks/${String(offset).padStart(16, '0')}${writer ? `-${writer}` : ''}`,
  /** Staged writes of replication copies and fallbacks (`staging`), swept by GC. */
  stagingRoot: '_replication/staging/',
  /** Garbage collection's to-do list, written from events (ADR 0012). */
  gcRoot: '_gc/',
  /** A repository whose state changed by a delete: its links are swept by the next run. */
  gcDirty: (repo: string) => `_gc/dirty/${repo}/_repo`,
  gcDirtyRoot: '_gc/dirty/',
  /** A blob some delete may have left unreferenced. */
  gcCandidate: (d: Digest) => `_gc/blobs/${d.algorithm}-${d.hex}`,
  gcCandidatesRoot: '_gc/blobs/',
  /**
   * The cross-node fence between garbage collection and writers (ADR 0024), used while a
   * region has several nodes: a writer stamps each blob it is about to reference, a collector
   * claims a blob before it unlinks or deletes it; each writes, then reads the other's key.
   */
  fenceStamp: (d: Digest) => `_fence/stamps/${d.algorithm}-${d.hex}`,
  fenceClaim: (d: Digest) => `_fence/claims/${d.algorithm}-${d.hex}`,
  /**
   * The same fence between a purge (or retention) removing a repository's tags and manifests and
   * the writers of manifests into it: a writer in flight is a key under `_writers/` for as long
   * as it writes, a remover's claim a key under `_claims/` while it removes; each side writes its
   * key, then lists the other's. (`_` cannot begin a repository's path component: no repository
   * is named `…/_claims`.)
   */
  fenceRepoWriters: (repo: string) => `_fence/repositories/${repo}/_writers/`,
  fenceRepoWriter: (repo: string, id: string) => `_fence/repositories/${repo}/_writers/${id}`,
  fenceRepoClaims: (repo: string) => `_fence/repositories/${repo}/_claims/`,
  fenceRepoClaim: (repo: string, id: string) => `_fence/repositories/${repo}/_claims/${id}`,
  /** Blobs whose bytes did not hash to their digest (`meridian storage verify --repair`). */
  quarantineRoot: '_quarantine/',
  quarantined: (blobKey: string) => `_quarantine/${blobKey}`,
} as const;

/**
 * What a key of the layout names (`parseKey`). Digests are `algorithm:hex` strings; `repository`
 * is the name as it appears in the key.
 */
export type LayoutKey =
  | { kind: 'blob'; digest: string }
  | { kind: 'layer'; repository: string; digest: string }
  | { kind: 'revision'; repository: string; digest: string }
  | { kind: 'tag'; repository: string; tag: string }
  | { kind: 'referrer'; repository: string; subject: string; digest: string }
  | { kind: 'lock'; repository: string; target: LockTarget }
  | { kind: 'tombstone'; repository: string; digest: string };

/**
 * The inverse of the `Layout` key builders for the keys that make up repository state (and
 * blob content); undefined for any other key (uploads, staging, a stray object). A repository's
 * name components never start with `_`, so the first `/_` ends the name.
 */
export function parseKey(key: string): LayoutKey | undefined {
  if (key.startsWith('blobs/')) {
    const [alg, , hex, data, ...more] = key.slice('blobs/'.length).split('/');
    if (!alg || !hex || data !== 'data' || more.length > 0) return undefined;
    return { kind: 'blob', digest: `${alg}:${hex}` };
  }
  if (!key.startsWith(Layout.repositoriesRoot)) return undefined;
  const rest = key.slice(Layout.repositoriesRoot.length);
  const cut = rest.indexOf('/_');
  if (cut <= 0) return undefined;
  const repository = rest.slice(0, cut);
  const p = rest.slice(cut + 1).split('/');
  const [top, a, b, c, d] = p;
  if (top === '_layers' && p.length === 4 && a && b && c === 'link')
    return { kind: 'layer', repository, digest: `${a}:${b}` };
  if (top === '_manifests' && a === 'revisions' && p.length === 5 && b && c && d === 'link')
    return { kind: 'revision', repository, digest: `${b}:${c}` };
  if (top === '_manifests' && a === 'tags' && p.length === 4 && b && c === 'current')
    return { kind: 'tag', repository, tag: b };
  if (top === '_referrers' && p.length === 4 && a && b && c && c.includes('-'))
    return { kind: 'referrer', repository, subject: `${a}:${b}`, digest: c.replace('-', ':') };
  if (top === '_deleted' && p.length === 3 && a && b)
    return { kind: 'tombstone', repository, digest: `${a}:${b}` };
  if (top === '_locks') {
    if (p.length === 2 && a === 'repository')
      return { kind: 'lock', repository, target: { scope: 'repository' } };
    if (p.length === 3 && a === 'tags' && b)
      return { kind: 'lock', repository, target: { scope: 'tag', tag: b } };
    if (p.length === 4 && a === 'manifests' && b && c)
      return { kind: 'lock', repository, target: { scope: 'manifest', digest: `${b}:${c}` } };
  }
  return undefined;
}

/**
 * A soft-deleted manifest (ADR 0017): what it was, the tags that pointed at it, and when it is
 * purged for good. Its content and everything it references stay (GC counts it as a reference).
 */
export interface TombstoneRecord {
  digest: string;
  mediaType: string;
  size: number;
  tags: string[];
  /** ISO 8601 */
  deletedAt: string;
  /** ISO 8601: purged after this. */
  expiresAt: string;
}

/** What a lock record applies to: the whole repository, one tag, or one manifest (by digest). */
export type LockTarget =
  { scope: 'repository' } | { scope: 'tag'; tag: string } | { scope: 'manifest'; digest: string };

/** The four attributes of a lock (ACR's `changeableAttributes`); absent means enabled. */
export interface LockFlags {
  deleteEnabled: boolean;
  writeEnabled: boolean;
  readEnabled: boolean;
  listEnabled: boolean;
}

/**
 * What a lock key holds. `seq` only grows (like a tag's), so a stale replication copy can never
 * put an older lock back. Unlocking writes a record with the flags enabled: records are never
 * deleted, so "no record" and "an older record" cannot be confused.
 */
export interface LockRecord extends LockFlags {
  /** Repository records only: tag patterns that make matching tags immutable once pushed. */
  writeOnce?: string[];
  seq: number;
  updatedAt: string;
}

/** A lock target as one string (`repository`, `tag=<tag>`, `manifest=<digest>`), e.g. in job ids. */
export function lockRef(t: LockTarget): string {
  return t.scope === 'repository'
    ? 'repository'
    : t.scope === 'tag'
      ? `tag=${t.tag}`
      : `manifest=${t.digest}`;
}

/** The inverse of `lockRef`; undefined for anything else. */
export function parseLockRef(ref: string): LockTarget | undefined {
  if (ref === 'repository') return { scope: 'repository' };
  if (ref.startsWith('tag=') && ref.length > 4) return { scope: 'tag', tag: ref.slice(4) };
  if (ref.startsWith('manifest=') && /^[a-z0-9+._-]+:[a-zA-Z0-9=_-]+$/.test(ref.slice(9)))
    return { scope: 'manifest', digest: ref.slice(9) };
  return undefined;
}

/** What a tag's `current` object holds. `seq` only grows, so a stale copy can never win. */
export interface TagRecord {
  digest: string;
  seq: number;
  updatedAt: string;
}

/** What a manifest revision link holds: enough to serve the manifest without parsing it. */
export interface RevisionRecord {
  digest: string;
  mediaType: string;
  size: number;
}

/** A referrer entry: the descriptor the referrers API returns. */
export interface ReferrerRecord {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}
