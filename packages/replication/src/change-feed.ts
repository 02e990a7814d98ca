import type { Redis } from 'ioredis';
import { lockRef, type LockTarget } from '@meridian/storage';
import type { ReplicationQueues } from './queues';
import { scopeOf, type RegionScopes } from './scope';
import type { SyncTarget } from './targets';

/**
 * The changes a region gets for a repository outside its scope (ADR 0026): removals and locks,
 * so what it still holds (from before the scope changed, or kept from a fallback read) never
 * outlives the primary's copy or escapes a lock. New content reaches it only by fallback.
 */
const OUT_OF_SCOPE_CHANGES = new Set([
  'blobDeleted',
  'manifestDeleted',
  'tagDeleted',
  'lockChanged',
]);

/** The registry's domain events, as the change feed reads them (structurally typed). */
export type ChangeEvent =
  | {
      type: 'blobCommitted' | 'blobMounted' | 'blobDeleted';
      repository: string;
      digest: string;
      at: number;
    }
  | {
      type: 'manifestPut' | 'manifestDeleted' | 'manifestRestored';
      repository: string;
      digest: string;
      at: number;
    }
  | { type: 'tagMoved'; repository: string; tag: string; digest: string; seq: number; at: number }
  | { type: 'tagDeleted'; repository: string; tag: string; at: number }
  | { type: 'lockChanged'; repository: string; tag?: string; digest?: string; at: number };

/** A tag change as replicas hear it over pub/sub. `digest` is absent for a deletion. */
export interface TagChange {
  repository: string;
  tag: string;
  digest?: string;
  seq: number;
  /** Commit time on the primary (ms); absent in changes the reconciler re-announces. */
  at?: number;
}

export function tagChannel(prefix: string): string {
  return `${prefix}:tags`;
}
export function latestTagsKey(prefix: string): string {
  return `${prefix}:tags:latest`;
}

/**
 * On the primary: turns every committed change into one sync job per replica region, and
 * announces tag changes at once so replicas never serve a tag older than the primary's.
 */
export class ChangeFeed {
  constructor(
    private readonly queues: ReplicationQueues,
    private readonly replicaRegions: string[],
    private readonly scopes?: RegionScopes,
  ) {}

  get redis(): Redis {
    return this.queues.redis;
  }

  async onEvent(e: ChangeEvent): Promise<void> {
    await this.announce(e);
    await this.enqueue(e);
  }

  /** Publishes a tag change to replicas (and as the latest for the tag); others are a no-op. */
  async announce(e: ChangeEvent): Promise<void> {
    if (e.type !== 'tagMoved' && e.type !== 'tagDeleted') return;
    const change: TagChange =
      e.type === 'tagMoved'
        ? { repository: e.repository, tag: e.tag, digest: e.digest, seq: e.seq, at: e.at }
        : { repository: e.repository, tag: e.tag, seq: e.at * 1000 + 999, at: e.at };
    const p = this.queues.prefix;
    await this.redis
      .multi()
      .hset(latestTagsKey(p), `${e.repository}:${e.tag}`, JSON.stringify(change))
      .publish(tagChannel(p), JSON.stringify(change))
      .exec();
  }

  /** One sync job per replica region for the changed tag, manifest, blob or lock. */
  async enqueue(e: ChangeEvent): Promise<void> {
    const target: SyncTarget =
      e.type === 'lockChanged'
        ? { kind: 'lock', repository: e.repository, lock: lockRef(lockTargetOf(e)) }
        : e.type === 'tagMoved' || e.type === 'tagDeleted'
          ? { kind: 'tag', repository: e.repository, tag: e.tag }
          : e.type === 'manifestPut' ||
              e.type === 'manifestDeleted' ||
              e.type === 'manifestRestored'
            ? { kind: 'manifest', repository: e.repository, digest: e.digest }
            : { kind: 'blob', repository: e.repository, digest: e.digest };
    const regions = this.replicaRegions.filter(
      (r) =>
        scopeOf(this.scopes, r)?.covers(e.repository) !== false || OUT_OF_SCOPE_CHANGES.has(e.type),
    );
    await Promise.all(regions.map((r) => this.queues.enqueue(r, target, e.at)));
  }
}

/** The lock a `lockChanged` event names: its tag, its manifest, or the repository. */
function lockTargetOf(e: { tag?: string; digest?: string }): LockTarget {
  if (e.tag !== undefined) return { scope: 'tag', tag: e.tag };
  if (e.digest !== undefined) return { scope: 'manifest', digest: e.digest };
  return { scope: 'repository' };
}
