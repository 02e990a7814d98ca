import { Layout } from './layout';
import { readJson } from './object-helpers';
import type { ObjectStore } from './object-store';
import { listAllKeys } from './walk';

/** How often and when last something was pulled (ms since the epoch). */
export interface PullCount {
  lastPulledAt: number;
  count: number;
}

/** A repository's pulls in one region: manifests by digest, tags by name. */
export interface UsageRecord {
  manifests: Record<string, PullCount>;
  tags: Record<string, PullCount>;
}

export const emptyUsage = (): UsageRecord => ({ manifests: {}, tags: {} });

/** Adds `b` into `a` (latest time, summed counts). */
export function mergeUsage(a: UsageRecord, b: UsageRecord): UsageRecord {
  const out: UsageRecord = {
    manifests: { ...a.manifests },
    tags: { ...a.tags },
  };
  for (const kind of ['manifests', 'tags'] as const)
    for (const [k, v] of Object.entries(b[kind])) {
      const cur = out[kind][k];
      out[kind][k] = cur
        ? { lastPulledAt: Math.max(cur.lastPulledAt, v.lastPulledAt), count: cur.count + v.count }
        : { ...v };
    }
  return out;
}

/**
 * Pull records of one region's storage (`_usage/<repo>/_pulls`): outside `repositories/`, so
 * neither replication nor the reconciler nor GC ever touches them.
 */
export class UsageRecords {
  constructor(readonly store: ObjectStore) {}

  async read(repository: string): Promise<UsageRecord> {
    return (await readJson<UsageRecord>(this.store, Layout.usage(repository))) ?? emptyUsage();
  }

  /** Merges `pulls` into the stored record (read, merge, write). */
  async add(repository: string, pulls: UsageRecord): Promise<void> {
    const merged = mergeUsage(await this.read(repository), pulls);
    await this.store.put(Layout.usage(repository), Buffer.from(JSON.stringify(merged)));
  }

  /** Repositories with a record in this region. */
  async repositories(): Promise<string[]> {
    const keys = await listAllKeys(this.store, Layout.usageRoot);
    return keys
      .filter((k) => k.endsWith('/_pulls'))
      .map((k) => k.slice(Layout.usageRoot.length, -'/_pulls'.length));
  }
}
