import type { Logger } from 'pino';
import { listRepositories, type ObjectStore } from '@meridian/storage';
import { repositoryInventory, type RepositoryInventory } from './inventory';
import { driftFound } from './metrics';
import type { ReplicationQueues } from './queues';
import type { SyncTarget } from './targets';

export interface ReconcileReport {
  region: string;
  repositories: number;
  drift: { tags: number; manifests: number; blobs: number; referrers: number };
}

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

  async reconcile(region: string, store: ObjectStore): Promise<ReconcileReport> {
    const repos = new Set([
      ...(await listRepositories(this.primary)),
      ...(await listRepositories(store)),
    ]);
    const report: ReconcileReport = {
      region,
      repositories: repos.size,
      drift: { tags: 0, manifests: 0, blobs: 0, referrers: 0 },
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
          k === 'tag' ? 'tags' : k === 'blob' ? 'blobs' : t.referrer ? 'referrers' : 'manifests';
        report.drift[kind]++;
        driftFound.inc({ region, kind: k });
        await this.queues.enqueue(region, t.target, now);
      }
    }
    this.log.info(report, 'reconciled region');
    return report;
  }
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
  for (const d of symmetricDifference(p.referrers, r.referrers)) {
    if (p.revisions.has(d) && r.revisions.has(d))
      out.push({ target: { kind: 'manifest', repository, digest: d }, referrer: true });
  }
  return out;
}

function symmetricDifference(a: Set<string>, b: Set<string>): string[] {
  return [...[...a].filter((x) => !b.has(x)), ...[...b].filter((x) => !a.has(x))];
}
