import type { Logger } from 'pino';
import { listRepositories, type ObjectStore } from '@meridian/storage';
import { repositoryInventory, type RepositoryInventory } from './inventory';
import { latestTagsKey, tagChannel, type TagChange } from './change-feed';
import { driftFound } from './metrics';
import type { ReplicationQueues } from './queues';
import { reconciledKey, redisEpoch } from './redis-epoch';
import type { SyncTarget } from './targets';

export interface ReconcileReport {
  region: string;
  repositories: number;
  drift: { tags: number; manifests: number; blobs: number; referrers: number; locks: number };
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
    };
    const now = Date.now();
    for (const repo of repos) {
      const [p, r] = await Promise.all([
        repositoryInventory(this.primary, repo),
        repositoryInventory(store, repo),
      ]);
      for (const t of diff(repo, p, r)) {
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
