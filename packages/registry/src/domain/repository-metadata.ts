import { LRUCache } from 'lru-cache';
import { OciError, parseDigest } from '@meridian/oci';
import { RepositoryLayout, type LockFlags, type ObjectStore } from '@meridian/storage';
import { effectiveLock, flagsOf, type EffectiveLock, type RepositoryLocks } from './lock-rules';
import type { LockStore } from './lock-store';
import type { PullSummary, UsageReader } from './usage-reader';
import { translated } from './storage-errors';
import { compareBytes, type TagStore } from './tag-store';
import { manifestSummary, type ManifestSummary } from './manifest-summary';

/** ACR's `changeableAttributes` of a repository, tag or manifest: the target's own record. */
export type ChangeableAttributes = LockFlags;

/** What every listed item carries beyond ACR (ADR 0020). */
interface Usage {
  lastPulledTime?: string;
  pullCount?: number;
}

/** ACR's `TagAttributesBase`, plus Meridian's extras. */
export interface TagAttributes extends Usage {
  name: string;
  digest: string;
  createdTime: string;
  lastUpdateTime: string;
  signed: boolean;
  changeableAttributes: ChangeableAttributes;
  effectiveLock: EffectiveLock;
}

/** ACR's `ManifestAttributesBase`, plus Meridian's extras. */
export interface ManifestAttributes extends Usage, ManifestSummary {
  digest: string;
  createdTime: string;
  lastUpdateTime: string;
  tags: string[];
  changeableAttributes: ChangeableAttributes;
  effectiveLock: EffectiveLock;
  /** How many manifests name this one as their `subject` (signatures, SBOMs…). */
  referrers: number;
}

/** ACR's `RepositoryAttributes`. */
export interface RepositoryAttributes {
  imageName: string;
  createdTime: string;
  lastUpdateTime: string;
  manifestCount: number;
  tagCount: number;
  changeableAttributes: ChangeableAttributes & { teleportEnabled: boolean };
  effectiveLock: EffectiveLock;
}

export type Order = 'timedesc' | 'timeasc';

export interface PageRequest {
  /** Page size; default and maximum {@link MAX_PAGE}. */
  n?: number;
  /** Lexical order: the last name (or digest) of the previous page. Time order: its cursor. */
  last?: string;
  orderby?: Order;
}

export interface Page<T> {
  items: T[];
  /** The `last` value of the next page; absent on the last page. */
  next?: string;
  /** Items in the whole listing. */
  total: number;
}

/** The largest page a listing answers. */
export const MAX_PAGE = 1000;
/** Reads in flight at once per listing. */
const PARALLEL = 16;

/**
 * The metadata `/acr/v1` serves (ACR's data plane, ADR 0020): repositories, tags and manifests
 * with their times, sizes, platforms, locks and pulls, read from the region's own storage. Locks
 * are the `LockStore`'s records (ADR 0015), pulls the `UsageReader`'s; nothing here writes.
 */
export class RepositoryMetadata {
  private readonly layout: RepositoryLayout;
  /** A manifest's content never changes: its summary is kept (by digest) once read. */
  private readonly summaries = new LRUCache<string, ManifestSummary>({ max: 20_000 });

  constructor(
    store: ObjectStore,
    private readonly locks: LockStore,
    /** Tags through the node's metadata cache (the freshness `/v2` tag lists have). */
    private readonly tagStore: TagStore,
    /** Every region's pull counts, when the node can read them. */
    readonly usage?: UsageReader,
  ) {
    this.layout = new RepositoryLayout(store);
  }

  repository(repository: string): Promise<RepositoryAttributes> {
    return translated(async () => {
      const [manifests, tags, locks] = await Promise.all([
        this.revisions(repository),
        this.tagRecords(repository),
        this.locks.fresh(repository),
      ]);
      if (manifests.length === 0 && tags.length === 0) throw unknownRepository(repository);
      const times = [
        ...manifests.map((m) => m.created),
        ...tags.map((t) => Date.parse(t.updatedAt)),
      ];
      const lockTime = locks.repository ? Date.parse(locks.repository.updatedAt) : 0;
      return {
        imageName: repository,
        createdTime: iso(Math.min(...times)),
        lastUpdateTime: iso(Math.max(...times, lockTime)),
        manifestCount: manifests.length,
        tagCount: tags.filter((t) => effectiveLock(locks, t).listEnabled).length,
        changeableAttributes: { ...flagsOf(locks.repository), teleportEnabled: false },
        effectiveLock: effectiveLock(locks),
      };
    });
  }

  tags(repository: string, page: PageRequest = {}): Promise<Page<TagAttributes>> {
    return translated(async () => {
      const [records, locks, usage] = await Promise.all([
        this.tagRecords(repository),
        this.locks.fresh(repository),
        this.pulls(repository),
      ]);
      if (records.length === 0 && !(await this.layout.repositoryExists(repository)))
        throw unknownRepository(repository);
      const all = records
        .filter((t) => effectiveLock(locks, t).listEnabled)
        .map((t) => tagAttributes(t, locks, usage?.tags[t.tag]));
      return paginate(all, page, (t) => t.name);
    });
  }

  tag(repository: string, tag: string): Promise<TagAttributes> {
    return translated(async () => {
      const rec = await this.tagStore.get(repository, tag);
      if (!rec) throw unknownManifest(`${repository}:${tag}`);
      const [locks, usage] = await Promise.all([
        this.locks.fresh(repository),
        this.pulls(repository),
      ]);
      return tagAttributes({ tag, ...rec }, locks, usage?.tags[tag]);
    });
  }

  manifests(repository: string, page: PageRequest = {}): Promise<Page<ManifestAttributes>> {
    return translated(async () => {
      const [revisions, tags, locks, usage] = await Promise.all([
        this.revisions(repository),
        this.tagRecords(repository),
        this.locks.fresh(repository),
        this.pulls(repository),
      ]);
      if (revisions.length === 0 && !(await this.layout.repositoryExists(repository)))
        throw unknownRepository(repository);
      // Sorted and paged on what the listing already knows (digest, times); only the page's
      // manifests are read and parsed.
      const byDigest = tagsByDigest(tags, locks);
      const visible = revisions
        .filter((r) => effectiveLock(locks, { digest: r.digest }).listEnabled)
        .map((r) => ({ ...r, updated: lastUpdate(r, byDigest.get(r.digest), locks) }));
      const p = paginate(
        visible.map((r) => ({ ...r, lastUpdateTime: iso(r.updated) })),
        page,
        (r) => r.digest,
      );
      const items = await inBatches(p.items, (r) =>
        this.describe(repository, r.digest, r.created, r.updated, byDigest, locks, usage),
      );
      return { ...p, items: items.filter((x): x is ManifestAttributes => x !== undefined) };
    });
  }

  manifest(repository: string, digest: string): Promise<ManifestAttributes> {
    return translated(async () => {
      const d = parseDigest(digest);
      const modified = await this.layout.revisionModified(repository, d);
      if (!modified) throw unknownManifest(digest);
      const [tags, locks, usage] = await Promise.all([
        this.tagRecords(repository),
        this.locks.fresh(repository),
        this.pulls(repository),
      ]);
      const byDigest = tagsByDigest(tags, locks);
      const created = modified.getTime();
      const updated = lastUpdate({ digest, created }, byDigest.get(digest), locks);
      const m = await this.describe(repository, digest, created, updated, byDigest, locks, usage);
      if (!m) throw unknownManifest(digest);
      return m;
    });
  }

  /** Resolves a tag to its digest (`MANIFEST_UNKNOWN` when it does not exist). */
  async digestOf(repository: string, tag: string): Promise<string> {
    const rec = await translated(() => this.layout.readTag(repository, tag));
    if (!rec) throw unknownManifest(`${repository}:${tag}`);
    return rec.digest;
  }

  private async describe(
    repository: string,
    digest: string,
    created: number,
    updated: number,
    byDigest: Map<string, TagRecordOf[]>,
    locks: RepositoryLocks,
    usage: { manifests: Record<string, PullSummary> } | undefined,
  ): Promise<ManifestAttributes | undefined> {
    const d = parseDigest(digest);
    const rev = await this.layout.readRevision(repository, d);
    if (!rev) return undefined; // deleted since the listing
    let summary = this.summaries.get(digest);
    if (!summary) {
      let bytes: Buffer;
      try {
        bytes = await this.layout.readBlob(d);
      } catch {
        return undefined;
      }
      summary = await manifestSummary(bytes, rev.mediaType, (c) =>
        this.layout.readBlob(parseDigest(c)),
      );
      this.summaries.set(digest, summary);
    }
    const referrers = await this.layout.listReferrers(repository, d).catch(() => []);
    return {
      digest,
      ...summary,
      createdTime: iso(created),
      lastUpdateTime: iso(updated),
      tags: (byDigest.get(digest) ?? []).map((t) => t.tag),
      changeableAttributes: flagsOf(locks.manifests.get(digest)),
      effectiveLock: effectiveLock(locks, { digest }),
      referrers: referrers.length,
      ...usageOf(usage?.manifests[digest]),
    };
  }

  private async revisions(repository: string): Promise<{ digest: string; created: number }[]> {
    const revisions = await this.layout.listRevisionTimes(repository);
    return revisions.map((r) => ({ digest: r.digest, created: r.modified.getTime() }));
  }

  private async tagRecords(repository: string): Promise<TagRecordOf[]> {
    const names = await this.tagStore.all(repository);
    const recs = await inBatches(names, async (tag): Promise<TagRecordOf | undefined> => {
      const rec = await this.tagStore.get(repository, tag);
      return rec ? { tag, digest: rec.digest, updatedAt: rec.updatedAt } : undefined;
    });
    return recs.filter((r): r is TagRecordOf => r !== undefined);
  }

  private async pulls(repository: string) {
    return this.usage ? this.usage.repository(repository) : undefined;
  }
}

interface TagRecordOf {
  tag: string;
  digest: string;
  updatedAt: string;
}

function tagAttributes(
  t: TagRecordOf,
  locks: RepositoryLocks,
  pulls: PullSummary | undefined,
): TagAttributes {
  return {
    name: t.tag,
    digest: t.digest,
    // A tag record holds the time it last moved; its first push is not kept (ADR 0020).
    createdTime: t.updatedAt,
    lastUpdateTime: t.updatedAt,
    signed: false,
    changeableAttributes: flagsOf(locks.tags.get(t.tag)),
    effectiveLock: effectiveLock(locks, { tag: t.tag, digest: t.digest, tagExists: true }),
    ...usageOf(pulls),
  };
}

function tagsByDigest(tags: TagRecordOf[], locks: RepositoryLocks): Map<string, TagRecordOf[]> {
  const out = new Map<string, TagRecordOf[]>();
  for (const t of tags) {
    if (!effectiveLock(locks, { tag: t.tag, digest: t.digest }).listEnabled) continue;
    const list = out.get(t.digest) ?? [];
    list.push(t);
    out.set(t.digest, list);
  }
  return out;
}

/** A manifest changes when it is pushed, a tag moves onto it, or its lock changes. */
function lastUpdate(
  r: { digest: string; created: number },
  tags: TagRecordOf[] | undefined,
  locks: RepositoryLocks,
): number {
  const lock = locks.manifests.get(r.digest);
  return Math.max(
    r.created,
    ...(tags ?? []).map((t) => Date.parse(t.updatedAt)),
    lock ? Date.parse(lock.updatedAt) : 0,
  );
}

function usageOf(p: PullSummary | undefined): Usage {
  if (!p) return {};
  return {
    pullCount: p.count,
    ...(p.lastPulledAt !== undefined && { lastPulledTime: iso(p.lastPulledAt) }),
  };
}

/**
 * One page of `all`: lexical by `key` (ACR's default; `last` is the previous page's last key),
 * or by `lastUpdateTime` (`last` is the opaque cursor of the previous page: a lexical `last`
 * cannot page a time order, two items may share a time).
 */
export function paginate<T extends { lastUpdateTime: string }>(
  all: T[],
  page: PageRequest,
  key: (t: T) => string,
): Page<T> {
  const n = Math.min(page.n ?? MAX_PAGE, MAX_PAGE);
  const time = (t: T) => Date.parse(t.lastUpdateTime);
  let sorted: T[];
  let start = 0;
  if (page.orderby) {
    const sign = page.orderby === 'timedesc' ? -1 : 1;
    const cmp = (at: number, ak: string, b: T) =>
      at !== time(b) ? sign * (at - time(b)) : compareBytes(ak, key(b));
    sorted = [...all].sort((a, b) => cmp(time(a), key(a), b));
    if (page.last !== undefined) {
      const c = decodeCursor(page.last);
      // A plain name (ACR's clients send the last name back) continues after that item.
      const at = c ?? cursorOf(sorted.find((x) => key(x) === page.last));
      if (at) {
        start = sorted.findIndex((x) => cmp(at.t, at.k, x) < 0);
        if (start < 0) start = sorted.length;
      }
    }
  } else {
    sorted = [...all].sort((a, b) => compareBytes(key(a), key(b)));
    if (page.last !== undefined) {
      start = sorted.findIndex((x) => key(x) > page.last!);
      if (start < 0) start = sorted.length;
    }
  }
  const items = sorted.slice(start, start + n);
  const more = start + n < sorted.length;
  const lastItem = items[items.length - 1];
  let next: string | undefined;
  if (more && lastItem)
    next = page.orderby ? encodeCursor(time(lastItem), key(lastItem)) : key(lastItem);
  return { items, total: sorted.length, ...(next !== undefined && { next }) };

  function cursorOf(x: T | undefined): { t: number; k: string } | undefined {
    return x ? { t: time(x), k: key(x) } : undefined;
  }
}

function encodeCursor(t: number, k: string): string {
  return `t.${Buffer.from(JSON.stringify([t, k])).toString('base64url')}`;
}

function decodeCursor(s: string): { t: number; k: string } | undefined {
  if (!s.startsWith('t.') || s.length > 1024) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(s.slice(2), 'base64url').toString('utf8'));
    if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string')
      return { t: v[0], k: v[1] };
  } catch {
    // not a cursor: a name
  }
  return undefined;
}

async function inBatches<T, R>(items: T[], fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += PARALLEL)
    out.push(...(await Promise.all(items.slice(i, i + PARALLEL).map(fn))));
  return out;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function unknownRepository(repository: string): OciError {
  return new OciError('NAME_UNKNOWN', `repository name not known to registry: ${repository}`, {
    name: repository,
  });
}

function unknownManifest(reference: string): OciError {
  return new OciError('MANIFEST_UNKNOWN', `manifest unknown to registry: ${reference}`);
}
