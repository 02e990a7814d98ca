import { isDigestLike, OciError, parseDigest } from '@meridian/oci';
import { RepositoryLayout, type ObjectStore, type TagRecord } from '@meridian/storage';
import type { ActivityEvent, RegionActivity } from './activity';
import { oldestPendingSeconds, queueJobs } from './metrics';
import { ProcessRestarts, type ProcessRestart } from './process-restarts';
import type { QueueCounts, ReplicationQueues } from './queues';
import { enqueueReconcile, reconcileRunState, type ReconcileRunState } from './schedules';
import type { RegionScope } from './scope';
import type { SyncTarget } from './targets';

export interface RegionInfo {
  name: string;
  role: 'primary' | 'replica';
  endpoint: string;
  store: ObjectStore;
  /** What a replica region replicates (absent: everything; ADR 0026). */
  scope?: RegionScope;
}

export interface ObjectStatus {
  region: string;
  role: 'primary' | 'replica';
  /** `out-of-scope`: the region does not replicate the repository, by design (ADR 0026). */
  state: 'replicated' | 'pending' | 'missing' | 'out-of-scope';
  digest: string | null;
  replicatedAt: string | null;
  lagSeconds: number | null;
}

export interface RegionHealth {
  region: string;
  role: 'primary' | 'replica';
  endpoint: string;
  healthy: boolean;
  node: 'up' | 'down';
  storage: 'up' | 'down';
  queue: QueueCounts | null;
  /** Unapplied changes (objects) in the region. */
  pending: number | null;
  /** Age of the oldest unapplied change, seconds (0 when caught up). */
  lagSeconds: number | null;
  /** A scoped replica's repository globs (`!` before an excluded one); null: everything (ADR 0026). */
  scope: string[] | null;
}

/**
 * Per-object and per-region replication state, read from each region's storage (the truth:
 * an object is replicated when its key exists there; `replicatedAt` is that key's write time)
 * and from the queues (pending changes).
 */
export class ReplicationStatus {
  constructor(
    private readonly regions: RegionInfo[],
    private readonly queues: ReplicationQueues | undefined,
  ) {}

  /**
   * Queues a reconcile run of each named replica region (all when none are named) for the
   * workers serving it — the job their schedule runs (`startReplicationSchedules`).
   */
  async requestReconcile(only: string[] = []): Promise<{ region: string; job: string }[]> {
    const replicas = this.regions.filter((r) => r.role === 'replica').map((r) => r.name);
    const unknown = only.filter((n) => !replicas.includes(n));
    if (unknown.length)
      throw new OciError(
        'UNSUPPORTED',
        `not a replica region: ${unknown.join(', ')}`,
        undefined,
        400,
      );
    const queues = this.queues;
    if (!queues)
      throw new OciError('UNSUPPORTED', 'this node has no Redis: reconcile needs the workers');
    const out: { region: string; job: string }[] = [];
    for (const region of only.length ? only : replicas) {
      const job = await enqueueReconcile(queues, region, 'manual');
      out.push({ region, job: String(job.id) });
    }
    return out;
  }

  /** A reconcile run's state and, when finished, its report (what it found and queued). */
  async reconcileRun(region: string, job: string): Promise<ReconcileRunState> {
    if (!this.regions.some((r) => r.role === 'replica' && r.name === region))
      throw new OciError('UNSUPPORTED', `not a replica region: ${region}`, undefined, 400);
    if (!this.queues)
      throw new OciError('UNSUPPORTED', 'this node has no Redis: reconcile needs the workers');
    return reconcileRunState(this.queues, region, job);
  }

  private get primary(): RegionInfo {
    const p = this.regions.find((r) => r.role === 'primary');
    if (!p) throw new Error('no primary region configured');
    return p;
  }

  async objectStatus(repository: string, reference: string): Promise<ObjectStatus[]> {
    const byTag = !isDigestLike(reference);
    let digest: string | null = null;
    let target: SyncTarget;
    let primaryTag: TagRecord | undefined;
    /** When the object was last written in a region (its key's modification time). */
    let written: (layout: RepositoryLayout) => Promise<Date | undefined>;
    if (byTag) {
      primaryTag = await new RepositoryLayout(this.primary.store).readTag(repository, reference);
      digest = primaryTag?.digest ?? null;
      target = { kind: 'tag', repository, tag: reference };
      written = (l) => l.tagModified(repository, reference);
    } else {
      const d = parseDigest(reference);
      digest = d.value;
      target = { kind: 'manifest', repository, digest: d.value };
      written = (l) => l.revisionModified(repository, d);
    }
    const committed = await written(new RepositoryLayout(this.primary.store));
    return Promise.all(
      this.regions.map(async (r): Promise<ObjectStatus> => {
        const base = { region: r.name, role: r.role, digest };
        const layout = new RepositoryLayout(r.store);
        const at = await written(layout).catch(() => undefined);
        let present = at !== undefined;
        if (present && byTag && r.role === 'replica') {
          const local = await layout.readTag(repository, reference);
          present = !!local && !!primaryTag && local.seq >= primaryTag.seq;
        }
        if (present && committed !== undefined && at !== undefined) {
          return {
            ...base,
            state: 'replicated',
            replicatedAt: at.toISOString(),
            lagSeconds:
              r.role === 'primary' ? 0 : Math.max(0, (at.getTime() - committed.getTime()) / 1000),
          };
        }
        if (r.scope && !r.scope.covers(repository))
          return { ...base, state: 'out-of-scope', replicatedAt: null, lagSeconds: null };
        const queues = this.queues;
        const pending =
          r.role === 'replica' && committed && queues
            ? await deadline(queues.pendingSince(r.name, target), 2000, 'pending changes').catch(
                (err: Error) => {
                  // Pending or missing cannot be told apart without Redis: say so, not a guess.
                  throw new OciError('UNAVAILABLE', err.message);
                },
              )
            : undefined;
        return {
          ...base,
          state: pending !== undefined ? 'pending' : 'missing',
          replicatedAt: null,
          lagSeconds: null,
        };
      }),
    );
  }

  async regionHealth(timeoutMs = 2000): Promise<RegionHealth[]> {
    return Promise.all(
      this.regions.map(async (r): Promise<RegionHealth> => {
        const [node, storage] = await Promise.all([
          fetch(`${r.endpoint}/healthz`, { signal: AbortSignal.timeout(timeoutMs) })
            .then((res) => (res.ok ? 'up' : 'down'))
            .catch(() => 'down' as const),
          r.store
            .ping()
            .then(() => 'up' as const)
            .catch(() => 'down' as const),
        ]);
        let queue: QueueCounts | null = null;
        let pending: number | null = null;
        let lag: number | null = r.role === 'primary' ? 0 : null;
        if (r.role === 'replica' && this.queues) {
          try {
            ({ counts: queue, pending, age: lag } = await this.backlog(r.name, timeoutMs));
          } catch {
            // Redis down or hung: the backlog is unknown (null), not the last one seen.
            queue = null;
          }
        }
        return {
          region: r.name,
          role: r.role,
          endpoint: r.endpoint,
          healthy: node === 'up' && storage === 'up',
          node,
          storage,
          queue,
          pending,
          lagSeconds: lag,
          scope: r.scope && !r.scope.everything ? scopeGlobs(r.scope) : null,
        };
      }),
    );
  }

  /** The child restarts `meridian dev` recorded, newest first (ADR 0023); none outside dev. */
  async processRestarts(timeoutMs = 2000): Promise<ProcessRestart[]> {
    if (!this.queues) return [];
    return deadline(
      new ProcessRestarts(this.queues.redis, this.queues.prefix).list(),
      timeoutMs,
      'the restarts',
    );
  }

  /**
   * A replica region's queue counts, unapplied changes and age of the oldest one (seconds).
   * Redis's clients wait for it without limit (queued while it is down, unanswered while it
   * hangs), so the read gives up after `timeoutMs`.
   */
  private async backlog(
    region: string,
    timeoutMs = 2000,
  ): Promise<{ counts: QueueCounts; pending: number; age: number }> {
    const queues = this.queues!;
    const [counts, pending, oldest] = await deadline(
      Promise.all([
        queues.counts(region),
        queues.pendingCount(region),
        queues.oldestPending(region),
      ]),
      timeoutMs,
      `the backlog of ${region}`,
    );
    const age = oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000);
    return { counts, pending, age };
  }

  /**
   * Refreshes the queue-depth and oldest-pending gauges (call on a timer). A region whose
   * backlog cannot be read (Redis down or hung) loses its series until it can: an absent lag
   * is unknown, while the last value kept would claim a lag that is no longer measured.
   */
  async updateGauges(): Promise<void> {
    if (!this.queues) return;
    for (const r of this.regions) {
      if (r.role !== 'replica') continue;
      let backlog: Awaited<ReturnType<ReplicationStatus['backlog']>>;
      try {
        backlog = await this.backlog(r.name);
      } catch (err) {
        for (const state of QUEUE_STATES) queueJobs.remove({ region: r.name, state });
        oldestPendingSeconds.remove({ region: r.name });
        throw err;
      }
      const { counts, pending, age } = backlog;
      for (const [state, n] of Object.entries(counts) as [string, number][])
        queueJobs.set({ region: r.name, state }, n);
      oldestPendingSeconds.set({ region: r.name }, age);
      await deadline(this.queues.activity.recordBacklog(r.name, pending, age), 2000, 'history');
    }
  }

  /** Per-region activity (lag quantiles, applied, bytes, backlog) from `since` (ms) or the last hour. */
  async history(since?: number): Promise<RegionActivity[]> {
    if (!this.queues) return [];
    return this.queues.activity.history(
      this.regions.filter((r) => r.role === 'replica').map((r) => r.name),
      since,
    );
  }

  /** Recently finished sync jobs, newest first. */
  async recent(limit?: number): Promise<ActivityEvent[]> {
    return this.queues ? this.queues.activity.recent(limit) : [];
  }
}

const QUEUE_STATES: (keyof QueueCounts)[] = ['waiting', 'active', 'delayed', 'failed'];

/** `p`, or a rejection once `ms` passed (`p` itself runs on; its outcome is then ignored). */
function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis: no answer for ${what} within ${ms} ms`)), ms);
  });
  p.catch(() => {}); // lost the race: its own rejection is not unhandled
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function scopeGlobs(scope: RegionScope): string[] {
  return [
    ...(scope.config.repositories ?? ['**']),
    ...(scope.config.exclude ?? []).map((g) => `!${g}`),
  ];
}
