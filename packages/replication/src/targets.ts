/** The thing a sync job makes equal to the primary: a repository's blob link, manifest or tag. */
export type SyncTarget =
  | { kind: 'blob'; repository: string; digest: string }
  | { kind: 'manifest'; repository: string; digest: string }
  | { kind: 'tag'; repository: string; tag: string };

export type SyncKind = SyncTarget['kind'];

/** A stable identity for a target (one pending job per region and identity). */
export function targetId(t: SyncTarget): string {
  const ref = t.kind === 'tag' ? t.tag : t.digest;
  // BullMQ reserves ':' in job ids; digests and names never contain '|' or '@'.
  return `${t.kind}|${t.repository}|${ref.replace(':', '@')}`;
}

/** The target a `targetId` names, or undefined for an id this version does not know. */
export function parseTargetId(id: string): SyncTarget | undefined {
  const [kind, repository, ref, ...rest] = id.split('|');
  if (rest.length > 0 || !repository || !ref) return undefined;
  if (kind === 'tag') return { kind, repository, tag: ref };
  if (kind === 'blob' || kind === 'manifest')
    return { kind, repository, digest: ref.replace('@', ':') };
  return undefined;
}
