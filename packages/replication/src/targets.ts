import { parseLockRef } from '@meridian/storage';

/**
 * The thing a sync job makes equal to the primary: a repository's blob link, manifest, tag or
 * lock record (`lock` is a `lockRef`: `repository`, `tag=<tag>` or `manifest=<digest>`).
 */
export type SyncTarget =
  | { kind: 'blob'; repository: string; digest: string }
  | { kind: 'manifest'; repository: string; digest: string }
  | { kind: 'tag'; repository: string; tag: string }
  | { kind: 'lock'; repository: string; lock: string };

export type SyncKind = SyncTarget['kind'];

/** The reference a target names within its repository (a digest, a tag or a lock ref). */
export function targetRef(t: SyncTarget): string {
  return t.kind === 'tag' ? t.tag : t.kind === 'lock' ? t.lock : t.digest;
}

/** A stable identity for a target (one pending job per region and identity). */
export function targetId(t: SyncTarget): string {
  // BullMQ reserves ':' in job ids; digests and names never contain '|' or '@'.
  return `${t.kind}|${t.repository}|${targetRef(t).replace(':', '@')}`;
}

/** The target a `targetId` names, or undefined for an id this version does not know. */
export function parseTargetId(id: string): SyncTarget | undefined {
  const [kind, repository, ref, ...rest] = id.split('|');
  if (rest.length > 0 || !repository || !ref) return undefined;
  if (kind === 'tag') return { kind, repository, tag: ref };
  if (kind === 'blob' || kind === 'manifest')
    return { kind, repository, digest: ref.replace('@', ':') };
  if (kind === 'lock') {
    const lock = ref.replace('@', ':');
    return parseLockRef(lock) ? { kind, repository, lock } : undefined;
  }
  return undefined;
}
