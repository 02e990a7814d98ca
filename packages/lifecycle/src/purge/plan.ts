import { OciError, parseDigest, parseManifest } from '@meridian/oci';
import { isNotFound, type RepositoryLayout } from '@meridian/storage';
import { compilePattern, type NamePattern } from './pattern';

/**
 * `REPO_REGEX:TAG_REGEX`, each matched against the whole name (as `acr purge` reads it), in RE2
 * (linear time, see `compilePattern`).
 */
export interface PurgeFilter {
  repository: NamePattern;
  tag: NamePattern;
}

export interface PurgeCriteria {
  filters: PurgeFilter[];
  /** Only tags last moved longer ago than this (ms). */
  agoMs?: number;
  /**
   * Only tags not pulled for this long (ms): neither the tag nor its manifest pulled in any
   * region since; a never-pulled image counts from its push.
   */
  notPulledForMs?: number;
  /** Keep the newest N matching tags of each repository. */
  keep?: number;
  /** Also delete the manifests no tag (and no live parent or subject) keeps. */
  untagged?: boolean;
  /** A repository losing more than this share of its tags needs `force`. Default 0.5. */
  maxShare?: number;
  force?: boolean;
  /**
   * Locked tags and manifests are planned too, and unlocked (`deleteEnabled`/`writeEnabled` set
   * true on the tag or manifest, as `acr purge --include-locked`) right before they go. A
   * repository's own lock is never lifted: what it locks stays. Default false: locked content
   * is skipped and reported.
   */
  includeLocked?: boolean;
  /**
   * Retention's re-check of untagged manifests (ADR 0021): only the manifests nothing keeps that
   * are in this set — with the children and referrers that go with them — are planned; other
   * untagged manifests stay, and keep what they hold.
   */
  onlyUntagged?: ReadonlySet<string>;
  /** Tags matching this are never planned (a retention rule's `exclude`). */
  exclude?: NamePattern;
  now?: number;
}

export interface PlannedTag {
  tag: string;
  digest: string;
  updatedAt: string;
}

export interface RepositoryPlan {
  repository: string;
  tagsBefore: number;
  tags: PlannedTag[];
  /** Manifests to delete (referrers and indexes before what they point at). */
  manifests: { digest: string; size: number; mediaType: string }[];
  /**
   * Bytes the removed manifests use that nothing kept in this repository uses (their content
   * and layers): what GC frees afterwards, unless other repositories share them.
   */
  bytes: number;
  /** Why nothing of this repository is removed (a rail), when so. */
  refused?: string;
  /** Tags and manifests the filter named that a lock keeps (skipped). */
  locked: { tag?: string; digest: string; by: string }[];
}

const YEAR = 365 * 86_400_000;
/** Durations past this are refused (an `--ago` overflow must never mean "everything"). */
export const MAX_DURATION_MS = 100 * YEAR;

/** `30d`, `12h`, `90m`, `45s` → ms; refuses anything else and anything over 100 years. */
export function parseDuration(s: string, what: string): number {
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(s.trim());
  if (!m)
    throw new OciError(
      'UNSUPPORTED',
      `${what}: not a duration: ${s.slice(0, 40)} (e.g. 30d, 12h)`,
      undefined,
      400,
    );
  const ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's'];
  if (ms > MAX_DURATION_MS)
    throw new OciError('UNSUPPORTED', `${what}: ${s} is over 100 years`, undefined, 400);
  return ms;
}

/** `REPO_REGEX:TAG_REGEX` (the last `:` splits; a bare `REPO_REGEX` means every tag). */
export function parseFilter(s: string): PurgeFilter {
  const i = s.lastIndexOf(':');
  const [repo, tag] = i < 0 ? [s, '.*'] : [s.slice(0, i), s.slice(i + 1)];
  const what = `filter ${s.slice(0, 80)}`;
  return { repository: compilePattern(repo, what), tag: compilePattern(tag || '.*', what) };
}

interface ManifestInfo {
  digest: string;
  size: number;
  mediaType: string;
  children: string[];
  blobs: { digest: string; size: number }[];
  subject?: string;
}

/**
 * What a purge would remove from one repository: the matching tags (older than `ago`, beyond
 * the newest `keep`), then — with `untagged` — every manifest nothing keeps: a manifest is kept
 * by a tag, by an index that is kept, or as a referrer of a kept subject. So index children and
 * referrers go with their parent and are never orphaned. Rails: more than `maxShare` of the
 * repository's tags, or its last tag, needs `force`.
 */
export async function planRepository(
  layout: RepositoryLayout,
  repository: string,
  c: PurgeCriteria,
  lockedBy?: (
    repository: string,
    at: { tag?: string; digest: string },
  ) => Promise<string | undefined>,
  pulls?: {
    tags: Record<string, number | undefined>;
    manifests: Record<string, number | undefined>;
    unreadable: string[];
  },
): Promise<RepositoryPlan> {
  const now = c.now ?? Date.now();
  const tagNames = await layout.listTags(repository);
  const records = (
    await Promise.all(
      tagNames.map(async (tag) => {
        const rec = await layout.readTag(repository, tag);
        return rec ? { tag, digest: rec.digest, updatedAt: rec.updatedAt } : undefined;
      }),
    )
  ).filter((t): t is PlannedTag => t !== undefined);
  const filters = c.filters.filter((f) => f.repository.test(repository));
  let matching = records.filter(
    (t) => filters.some((f) => f.tag.test(t.tag)) && !c.exclude?.test(t.tag),
  );
  // With `includeLocked` nothing is kept by a lock here: the removal unlocks it first.
  if (c.includeLocked) lockedBy = undefined;
  if (c.agoMs !== undefined)
    matching = matching.filter((t) => now - Date.parse(t.updatedAt) > c.agoMs!);
  if (c.notPulledForMs !== undefined) {
    const since = now - c.notPulledForMs;
    matching = matching.filter((t) => {
      const last = Math.max(
        Date.parse(t.updatedAt),
        pulls?.tags[t.tag] ?? 0,
        pulls?.manifests[t.digest] ?? 0,
      );
      return last < since;
    });
  }
  // Newest first; the first `keep` stay.
  matching.sort((a, b) => Date.parse(b.updatedAt) - Date.parse(a.updatedAt));
  const locked: RepositoryPlan['locked'] = [];
  const tags: PlannedTag[] = [];
  for (const t of matching.slice(c.keep ?? 0)) {
    const by = await lockedBy?.(repository, { tag: t.tag, digest: t.digest });
    if (by) locked.push({ tag: t.tag, digest: t.digest, by });
    else tags.push(t);
  }
  const plan: RepositoryPlan = {
    repository,
    tagsBefore: records.length,
    tags,
    manifests: [],
    bytes: 0,
    locked,
  };

  if (c.untagged) {
    const removed = new Set(tags.map((t) => t.tag));
    const infos = new Map<string, ManifestInfo>();
    for (const d of await layout.listRevisions(repository)) {
      const info = await readInfo(layout, repository, d);
      if (info) infos.set(d, info);
    }
    const referrers = new Map<string, string[]>();
    for (const m of infos.values())
      if (m.subject) referrers.set(m.subject, [...(referrers.get(m.subject) ?? []), m.digest]);
    const live = new Set<string>();
    const visit = (d: string): void => {
      if (live.has(d)) return;
      live.add(d);
      for (const child of infos.get(d)?.children ?? []) visit(child);
      for (const r of referrers.get(d) ?? []) visit(r);
    };
    for (const t of records) if (!removed.has(t.tag)) visit(t.digest);
    // A manifest whose content cannot be read is kept, and so is all it might hold.
    for (const d of await layout.listRevisions(repository)) if (!infos.has(d)) visit(d);
    // A locked manifest stays, with everything it keeps.
    for (const m of [...infos.values()].filter((x) => !live.has(x.digest))) {
      const by = await lockedBy?.(repository, { digest: m.digest });
      if (by) {
        locked.push({ digest: m.digest, by });
        visit(m.digest);
      }
    }
    if (c.onlyUntagged) keepUnlisted(infos, referrers, live, c.onlyUntagged, visit);
    const doomed = [...infos.values()].filter((m) => !live.has(m.digest));
    // Referrers first, then indexes, then what they point at.
    const rank = (m: ManifestInfo) => (m.subject ? 0 : m.children.length > 0 ? 1 : 2);
    doomed.sort((a, b) => rank(a) - rank(b));
    plan.manifests = doomed.map(({ digest, size, mediaType }) => ({ digest, size, mediaType }));
    const kept = new Set<string>();
    for (const d of live) for (const b of infos.get(d)?.blobs ?? []) kept.add(b.digest);
    const freed = new Map<string, number>();
    for (const m of doomed) {
      freed.set(m.digest, m.size);
      for (const b of m.blobs)
        if (!kept.has(b.digest) && !live.has(b.digest)) freed.set(b.digest, b.size);
    }
    plan.bytes = [...freed.values()].reduce((a, b) => a + b, 0);
  }

  if (c.notPulledForMs !== undefined && pulls && pulls.unreadable.length > 0)
    plan.refused = `the pull records of ${pulls.unreadable.join(', ')} cannot be read, so "not pulled" cannot be told`;
  else if (!c.force) {
    const share = c.maxShare ?? 0.5;
    if (tags.length > 0 && tags.length === records.length)
      plan.refused = `it would remove every tag of ${repository} (${tags.length}); use force`;
    else if (records.length > 0 && tags.length / records.length > share)
      plan.refused = `it would remove ${tags.length} of ${records.length} tags of ${repository}, over the ${Math.round(share * 100)} % limit; use force`;
  }
  return plan;
}

/**
 * Untagged retention's re-check: of the manifests nothing keeps, only those in `only` go, with
 * the children and referrers that hang off them alone. Every other unkept manifest that is not
 * itself a child or referrer of an unkept one (an untagging from before the policy, or one not
 * due yet) is kept with all it holds — so a child two indexes share stays while either stays.
 */
function keepUnlisted(
  infos: Map<string, ManifestInfo>,
  referrers: Map<string, string[]>,
  live: Set<string>,
  only: ReadonlySet<string>,
  visit: (d: string) => void,
): void {
  const unkept = [...infos.values()].filter((m) => !live.has(m.digest));
  const hangs = new Set<string>();
  for (const m of unkept) {
    for (const c of m.children) hangs.add(c);
    for (const r of referrers.get(m.digest) ?? []) hangs.add(r);
  }
  for (const m of unkept) if (!only.has(m.digest) && !hangs.has(m.digest)) visit(m.digest);
  // What hangs only off listed manifests goes with them; anything else left is kept.
  const goes = new Set<string>();
  const follow = (d: string): void => {
    if (goes.has(d) || live.has(d)) return;
    goes.add(d);
    for (const c of infos.get(d)?.children ?? []) follow(c);
    for (const r of referrers.get(d) ?? []) follow(r);
  };
  for (const d of only) if (infos.has(d)) follow(d);
  for (const m of unkept) if (!goes.has(m.digest)) visit(m.digest);
}

async function readInfo(
  layout: RepositoryLayout,
  repository: string,
  digest: string,
): Promise<ManifestInfo | undefined> {
  const d = parseDigest(digest);
  const rev = await layout.readRevision(repository, d);
  if (!rev) return undefined;
  try {
    const parsed = parseManifest(await layout.readBlob(d), rev.mediaType);
    return {
      digest,
      size: rev.size,
      mediaType: rev.mediaType,
      children: parsed.children.map((c) => c.digest),
      blobs: parsed.blobs.map((b) => ({ digest: b.digest, size: b.size })),
      subject: parsed.subject?.digest,
    };
  } catch (err) {
    if (isNotFound(err) || err instanceof OciError) return undefined;
    throw err;
  }
}
