import type { Logger } from 'pino';
import type { ReplicationQueues } from './queues';
import type { TagWatch } from './tag-watch';
import type { RegionScope } from './scope';
import type { SyncTarget } from './targets';

export interface ReplicaMissOptions {
  /** The replica's region. */
  region: string;
  /** Absent on a node without Redis: then a miss is only served, never bumped. */
  queues?: ReplicationQueues;
  /** The replica's tag watch, when it has one. */
  tagWatch?: TagWatch;
  log: Logger;
  /** How long bumping a job may take before it is given up (the read never waits). Default 2000. */
  timeoutMs?: number;
  /** The region's scope: outside it, a miss is copied in only with `keepFetched` (ADR 0026). */
  scope?: RegionScope;
}

/**
 * What a replica does when it serves a read from the primary (a miss): it counts the fallback
 * for the dashboard and moves that object's sync job to the front of its region's queue, so
 * the copy the client is waiting for lands next. Best effort and never awaited by the read:
 * while the tag watch is unsure (Redis lost or unreachable, ADR 0008) every tag read goes to the
 * primary by design and is not a miss to bump — the reconcile queues what differs.
 */
export function replicaMissPolicy(opts: ReplicaMissOptions): (o: SyncTarget) => void {
  const { queues, region, tagWatch, log } = opts;
  const timeoutMs = opts.timeoutMs ?? 2000;
  return (o) => {
    if (!queues) return;
    queues.activity.recordFallback(region).catch(() => {});
    if (o.kind === 'tag' && tagWatch && !tagWatch.connected) return;
    if (opts.scope && !opts.scope.covers(o.repository) && !opts.scope.keepFetched) return;
    let timer: NodeJS.Timeout | undefined;
    void Promise.race([
      queues.enqueue(region, o, Date.now(), true),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ])
      .catch((err: unknown) =>
        log.warn(
          { region, err: (err as Error).message },
          'bumping a sync job failed; the reconciler will catch up',
        ),
      )
      .finally(() => clearTimeout(timer));
  };
}
