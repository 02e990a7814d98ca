import type { RepositoryLayout } from '@meridian/storage';
import { planRepository, type PurgeCriteria, type RepositoryPlan } from './plan';

/** How a purge removes things: through the registry, so each removal is an ordinary event. */
export interface PurgeTarget {
  /**
   * Deletes the tag if it still points at `digest` (a push may have moved it since the plan).
   * `unlock`: a lock on the tag is lifted first (`--include-locked`).
   */
  deleteTag(
    repository: string,
    tag: string,
    digest: string,
    opts?: { unlock?: boolean },
  ): Promise<boolean>;
  /**
   * Deletes the manifest if no tag points at it now, and no manifest pushed since the plan
   * (a revision not in `known`) names it as a child (`unlock`: as for tags).
   */
  deleteManifest(
    repository: string,
    digest: string,
    opts?: { unlock?: boolean; known?: ReadonlySet<string> },
  ): Promise<boolean>;
  /** Last pulls anywhere (ms) by tag and by manifest digest; `unreadable` regions make it unsure. */
  lastPulled?(repository: string): Promise<{
    tags: Record<string, number | undefined>;
    manifests: Record<string, number | undefined>;
    unreadable: string[];
  }>;
  /** What lock keeps this tag or manifest from being deleted (`deleteEnabled` false), if any. */
  lockedBy?(repository: string, at: { tag?: string; digest: string }): Promise<string | undefined>;
}

export interface PurgeReport {
  dryRun: boolean;
  repositories: (RepositoryPlan & { tagsDeleted: number; manifestsDeleted: number })[];
  totals: {
    repositories: number;
    tags: number;
    manifests: number;
    bytes: number;
    refused: number;
    /** Tags and manifests a lock kept. */
    locked: number;
  };
}

/**
 * `meridian purge`: plans every matching repository, then (unless a dry run) removes what each
 * plan names — tags first, then manifests, each re-checked at the moment it goes. A refused
 * repository (a rail) keeps everything. Freed blobs are garbage collection's, afterwards.
 */
export async function purge(
  layout: RepositoryLayout,
  target: PurgeTarget,
  c: PurgeCriteria & {
    dryRun: boolean;
    /** After a repository's removals: what actually went (a retention run's event). */
    onRemoved?: (
      repository: string,
      removed: { tags: string[]; manifests: string[]; bytes: number },
    ) => Promise<void>;
    /**
     * Untagged retention: only these repositories, each planning only its due manifests
     * (`onlyUntagged`) instead of the filters' tags.
     */
    untaggedDue?: ReadonlyMap<string, ReadonlySet<string>>;
  },
): Promise<PurgeReport> {
  const all = await layout.listRepositories();
  const repos = (
    c.untaggedDue
      ? all.filter((r) => c.untaggedDue!.has(r))
      : all.filter((r) => c.filters.some((f) => f.repository.test(r)))
  ).sort();
  const report: PurgeReport = {
    dryRun: c.dryRun,
    repositories: [],
    totals: { repositories: 0, tags: 0, manifests: 0, bytes: 0, refused: 0, locked: 0 },
  };
  for (const repository of repos) {
    if (c.notPulledForMs !== undefined && !target.lastPulled)
      throw new Error('--not-pulled-for needs the pull records (usage) of every region');
    const pulls = c.notPulledForMs !== undefined ? await target.lastPulled!(repository) : undefined;
    // What the plan saw: anything pushed later is re-checked before a manifest goes.
    const known = new Set(await layout.listRevisions(repository));
    const criteria = c.untaggedDue
      ? { ...c, filters: [], untagged: true, onlyUntagged: c.untaggedDue.get(repository) }
      : c;
    const plan = await planRepository(
      layout,
      repository,
      criteria,
      target.lockedBy?.bind(target),
      pulls,
    );
    const entry = { ...plan, tagsDeleted: 0, manifestsDeleted: 0 };
    if (plan.tags.length === 0 && plan.manifests.length === 0 && plan.locked.length === 0) continue;
    report.repositories.push(entry);
    report.totals.locked += plan.locked.length;
    if (plan.refused) {
      report.totals.refused++;
      continue;
    }
    report.totals.repositories++;
    report.totals.tags += plan.tags.length;
    report.totals.manifests += plan.manifests.length;
    report.totals.bytes += plan.bytes;
    if (c.dryRun) continue;
    const unlock = { unlock: c.includeLocked === true, known };
    const removed = { tags: [] as string[], manifests: [] as string[], bytes: 0 };
    for (const t of plan.tags)
      if (await target.deleteTag(repository, t.tag, t.digest, unlock)) removed.tags.push(t.tag);
    for (const m of plan.manifests)
      if (await target.deleteManifest(repository, m.digest, unlock))
        removed.manifests.push(m.digest);
    entry.tagsDeleted = removed.tags.length;
    entry.manifestsDeleted = removed.manifests.length;
    // The plan's bytes when every planned manifest went; otherwise what they weigh themselves.
    removed.bytes =
      removed.manifests.length === plan.manifests.length
        ? plan.bytes
        : plan.manifests
            .filter((m) => removed.manifests.includes(m.digest))
            .reduce((a, m) => a + m.size, 0);
    if (removed.tags.length + removed.manifests.length > 0)
      await c.onRemoved?.(repository, removed);
  }
  return report;
}
