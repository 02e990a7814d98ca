import { UsageRecords, type ObjectStore, type PullCount } from '@meridian/storage';

/** One tag's or manifest's pulls: across regions, and per region. */
export interface PullSummary {
  /** Latest pull in any region (ms); absent when never pulled. */
  lastPulledAt?: number;
  count: number;
  regions: Record<string, PullCount>;
}

export interface RepositoryUsage {
  repository: string;
  tags: Record<string, PullSummary>;
  manifests: Record<string, PullSummary>;
  /** Regions whose records could not be read (their pulls are missing from the totals). */
  unreadable: string[];
}

/**
 * The aggregate of every region's pull records (each region keeps its own, `PullRecorder`):
 * when a tag or manifest was last pulled anywhere, how often, and where. Listings, the
 * dashboard and retention rules read it on the primary.
 */
export class UsageReader {
  constructor(private readonly regions: { name: string; store: ObjectStore }[]) {}

  async repository(repository: string): Promise<RepositoryUsage> {
    const out: RepositoryUsage = { repository, tags: {}, manifests: {}, unreadable: [] };
    const records = await Promise.all(
      this.regions.map(async (r) => {
        try {
          return { region: r.name, rec: await new UsageRecords(r.store).read(repository) };
        } catch {
          out.unreadable.push(r.name);
          return undefined;
        }
      }),
    );
    for (const x of records) {
      if (!x) continue;
      for (const kind of ['tags', 'manifests'] as const)
        for (const [k, v] of Object.entries(x.rec[kind])) {
          const s = (out[kind][k] ??= { count: 0, regions: {} });
          s.count += v.count;
          s.lastPulledAt = Math.max(s.lastPulledAt ?? 0, v.lastPulledAt);
          s.regions[x.region] = v;
        }
    }
    return out;
  }
}
