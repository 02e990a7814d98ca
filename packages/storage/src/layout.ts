import type { Digest } from '@meridian/oci';

/**
 * The registry's key layout — identical in every region, so replication is "make key K in
 * region R equal to key K in the primary". Names and tags are validated by the OCI grammar
 * before they reach here, and every key is validated again by the driver wrapper.
 */
export const Layout = {
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
  /** Blobs whose bytes did not hash to their digest (`meridian storage verify --repair`). */
  quarantineRoot: '_quarantine/',
  quarantined: (blobKey: string) => `_quarantine/${blobKey}`,
} as const;

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
