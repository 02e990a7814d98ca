import type { Logger } from 'pino';
import { Layout, listAllObjects, listRepositories, type ObjectStore } from '@meridian/storage';
import { repositoryInventory, type RepositoryInventory } from './inventory';
import { latestTagsKey, tagChannel, type TagChange } from './change-feed';
import { driftFound } from './metrics';
import type { ReplicationQueues } from './queues';
import { reconciledKey, redisEpoch } from './redis-epoch';
import { scopeOf, type RegionScopes } from './scope';
import type { SyncTarget } from './targets';

export interface ReconcileReport {
  region: string;
  repositories: number;
  drift: { tags: number; manifests: number; blobs: number; referrers: number; locks: number };
  /** Repositories outside the region's scope (ADR 0026): not compared, or only what it holds. */
  outOfScope: number;
  /** Out-of-scope repositories whose content was removed from the region. */
  removed: number;
}

// Records a tag change in the latest-tags hash unless a newer one is there, and publishes it.
const ANNOUNCE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, c = pcall(cjson.decode, cur)
  if ok and type(c) == 'table' and tonumber(c.seq) and tonumber(c.seq) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1`;

/**
 * Compares a region with the primary — tags, manifests, blob links, referrers — and queues a
 * sync for every difference. Storage is the source of truth, so after a Redis flush, a worker
 * crash or a region outage this alone brings every region back without a human.
 */
export class Reconciler {
  constructor(
    private readonly primary: ObjectStore,
    private readonly queues: ReplicationQueues,
    private readonly log: Logger,
    private readonly scopes?: RegionScopes,
  ) {}

  /**
   * Queues a sync for every difference, and re-announces every tag that differs (so replicas
   * know again which tags are behind after Redis lost what was announced). When Redis kept its
   * data set for the whole run, records that this region was reconciled in it: a replica that
   * saw Redis lose its data trusts its tag watch again from then on.
   */
  async reconcile(region: string, store: ObjectStore): Promise<ReconcileReport> {
    const redis = this.queues.redis;
    const prefix = this.queues.prefix;
    const epoch = await redisEpoch(redis, prefix);
    const repos = new Set([
      ...(await listRepositories(this.primary)),
      ...(await listRepositories(store)),
    ]);
    const report: ReconcileReport = {
      region,
      repositories: repos.size,
      drift: { tags: 0, manifests: 0, blobs: 0, referrers: 0, locks: 0 },
      outOfScope: 0,
      removed: 0,
    };
    const scope = scopeOf(this.scopes, region);
    const now = Date.now();
    for (const repo of repos) {
      const inScope = !scope || scope.covers(repo);
      if (!inScope) {
        report.outOfScope++;
        if (!scope.keepFetched) {
          if (await removeRepository(store, repo)) report.removed++;
          continue;
        }
      }
      const [p, r] = await Promise.all([
        repositoryInventory(this.primary, repo),
        repositoryInventory(store, repo),
      ]);
      for (const t of diff(repo, p, r)) {
        // Outside the scope, only what the region holds is kept level with the primary.
        if (!inScope && !holds(r, t.target)) continue;
        const k = t.target.kind;
        const kind =
          k === 'tag'
            ? 'tags'
            : k === 'blob'
              ? 'blobs'
              : k === 'lock'
                ? 'locks'
                : t.referrer
                  ? 'referrers'
                  : 'manifests';
        report.drift[kind]++;
        driftFound.inc({ region, kind: k });
        if (t.target.kind === 'tag') await this.announce(t.target, p, r);
        await this.queues.enqueue(region, t.target, now);
      }
    }
    if ((await redisEpoch(redis, prefix)) === epoch)
      await redis.set(reconciledKey(prefix, region), epoch);
    this.log.info(report, 'reconciled region');
    return report;
  }

  private async announce(
    t: { repository: string; tag: string },
    p: RepositoryInventory,
    r: RepositoryInventory,
  ): Promise<void> {
    const c = tagChange(t, p, r);
    await this.queues.redis.eval(
      ANNOUNCE,
      2,
      latestTagsKey(this.queues.prefix),
      tagChannel(this.queues.prefix),
      `${c.repository}:${c.tag}`,
      String(c.seq),
      JSON.stringify(c),
    );
  }
}

/** Whether a region's inventory has the object a drift names (so keeping it level is not copying it in). */
function holds(r: RepositoryInventory, t: SyncTarget): boolean {
  switch (t.kind) {
    case 'tag':
      return r.tags.has(t.tag);
    case 'manifest':
      return r.revisions.has(t.digest);
    case 'blob':
      return r.layers.has(t.digest);
    case 'lock':
      return r.locks.has(t.lock) || r.tags.size + r.revisions.size > 0;
    default:
      return false;
  }
}

/**
 * Removes a repository that left the region's scope from the region: tags first (nothing is
 * served by name any more), then everything else of it. Its blob bytes stay in the region's blob
 * store (shared with other repositories) for garbage collection. Nested repositories
 * (`a/b` under `a`) are not touched. Returns whether anything was there.
 */
async function removeRepository(store: ObjectStore, repo: string): Promise<boolean> {
  const root = Layout.repository(repo);
  const own = (await listAllObjects(store, root)).filter((o) =>
    o.key.slice(root.length).startsWith('_'),
  );
  const tagsFirst = [
    ...own.filter((o) => o.key.startsWith(Layout.tagsRoot(repo))),
    ...own.filter((o) => !o.key.startsWith(Layout.tagsRoot(repo))),
  ];
  for (const o of tagsFirst) await store.delete(o.key);
  return own.length > 0;
}

/** What the primary would have announced for a tag that differs (a deletion when it has none). */
function tagChange(
  t: { repository: string; tag: string },
  p: RepositoryInventory,
  r: RepositoryInventory,
): TagChange {
  const [digest, seq] = splitTagValue(p.tags.get(t.tag));
  if (digest) return { repository: t.repository, tag: t.tag, digest, seq };
  const [, local] = splitTagValue(r.tags.get(t.tag));
  return {
    repository: t.repository,
    tag: t.tag,
    seq: Math.max(local + 1, Date.now() * 1000 + 999),
  };
}

function splitTagValue(v: string | undefined): [string | undefined, number] {
  if (!v) return [undefined, 0];
  const at = v.lastIndexOf('@');
  return [v.slice(0, at), Number(v.slice(at + 1))];
}

interface Drift {
  target: SyncTarget;
  /** Found through a referrer entry rather than a revision. */
  referrer?: boolean;
}

/** What differs between the primary's and a region's inventory of one repository. */
export function diff(repository: string, p: RepositoryInventory, r: RepositoryInventory): Drift[] {
  const out: Drift[] = [];
  for (const tag of new Set([...p.tags.keys(), ...r.tags.keys()])) {
    if (p.tags.get(tag) !== r.tags.get(tag)) out.push({ target: { kind: 'tag', repository, tag } });
  }
  for (const d of symmetricDifference(p.revisions, r.revisions))
    out.push({ target: { kind: 'manifest', repository, digest: d } });
  for (const d of symmetricDifference(p.layers, r.layers))
    out.push({ target: { kind: 'blob', repository, digest: d } });
  // A region behind the primary's lock record; a region ahead of it (it cannot be) is left alone.
  for (const [lock, seq] of p.locks)
    if ((r.locks.get(lock) ?? -1) < seq) out.push({ target: { kind: 'lock', repository, lock } });
  for (const lock of r.locks.keys())
    if (!p.locks.has(lock)) out.push({ target: { kind: 'lock', repository, lock } });
  for (const d of symmetricDifference(p.referrers, r.referrers)) {
    if (p.revisions.has(d) && r.revisions.has(d))
      out.push({ target: { kind: 'manifest', repository, digest: d }, referrer: true });
  }
  return out;
}

function symmetricDifference(a: Set<string>, b: Set<string>): string[] {
  return [...[...a].filter((x) => !b.has(x)), ...[...b].filter((x) => !a.has(x))];
}
