import type { Logger } from 'pino';
import { ChangeFeed, type ChangeEvent } from './change-feed';
import type { ReplicationQueues } from './queues';
import type { RegionScopes } from './scope';

/** A registry's domain event as replication reads it (structural: no import of the registry). */
export type ReplicatedEvent = { type: string; repository: string; sequence: number } & Record<
  string,
  unknown
>;

/** The part of `@meridian/registry`'s `RegistryEvents` replication plugs into. */
export interface EventSource<E extends ReplicatedEvent> {
  /** Called synchronously at emit, never awaited. */
  subscribe(listener: (e: E) => void): () => void;
  /** Durable: at least once, in commit order, across restarts. */
  attach(sub: {
    name: string;
    deliver: (e: E) => Promise<void>;
    timeoutMs?: number;
  }): Promise<() => Promise<void>>;
}

export interface ReplicationDeps {
  queues: ReplicationQueues;
  /** Regions that get a sync job per change. */
  replicaRegions: string[];
  /** What each replica region replicates (absent: everything; ADR 0026). */
  scopes?: RegionScopes;
  log: Logger;
  /** How long the fast-path tag announcement may take before the dispatcher's copy counts. Default 1 000 ms. */
  announceTimeoutMs?: number;
}

const REPLICATED = new Set([
  'blobCommitted',
  'blobMounted',
  'blobDeleted',
  'manifestPut',
  'manifestDeleted',
  'manifestRestored',
  'tagMoved',
  'tagDeleted',
  'lockChanged',
]);

/**
 * On a primary: every committed change becomes one sync job per replica region, delivered by
 * the event dispatcher (durable; a Redis outage delays the jobs, never the push). Tag changes
 * are also announced at once from the emit (ADR 0008's fast path), fire-and-forget with a short
 * timeout; when that did not succeed the dispatcher announces them with the jobs.
 */
export async function attachReplication<E extends ReplicatedEvent>(
  registry: { events: EventSource<E> },
  deps: ReplicationDeps,
): Promise<() => Promise<void>> {
  const feed = new ChangeFeed(deps.queues, deps.replicaRegions, deps.scopes);
  const timeoutMs = deps.announceTimeoutMs ?? 1000;
  /** Fast-path announcements by event sequence: resolved true once Redis took them. */
  const announced = new Map<number, Promise<boolean>>();

  const unsubscribe = registry.events.subscribe((e) => {
    if (e.type !== 'tagMoved' && e.type !== 'tagDeleted') return;
    announced.set(
      e.sequence,
      within(feed.announce(e as unknown as ChangeEvent), timeoutMs).then(
        () => true,
        (err: unknown) => {
          deps.log.warn({ err: (err as Error).message }, 'tag announcement delayed');
          return false;
        },
      ),
    );
  });

  const detach = await registry.events.attach({
    name: 'replication',
    timeoutMs: 10_000,
    deliver: async (e) => {
      if (!REPLICATED.has(e.type)) return;
      const change = e as unknown as ChangeEvent;
      const fast = announced.get(e.sequence);
      if (!(await (fast ?? Promise.resolve(false)))) await feed.announce(change);
      announced.delete(e.sequence);
      await feed.enqueue(change);
    },
  });
  return async () => {
    unsubscribe();
    await detach();
  };
}

async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      p,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
