import type { Logger } from 'pino';
import {
  runPurge,
  type PurgeTarget,
  attachGcCandidates,
  GarbageCollector,
  GcRequestError,
  GcRunFailed,
  GcService,
  startGcSchedule,
  type RunningGc,
} from '@meridian/lifecycle';
import { OciError, parseDigest, parseManifest } from '@meridian/oci';
import {
  UsageReader,
  effectiveLock,
  repoLock,
  type GcAdmin,
  type PurgeAdmin,
  type Registry,
} from '@meridian/registry';
import { redisEpoch, type ReplicationQueues } from '@meridian/replication';
import { RepositoryLayout, type ObjectStore } from '@meridian/storage';
import type { NodeConfig } from './config';

export interface NodeGc {
  /** The admin API's view, on a primary node. */
  admin?: GcAdmin;
  /** `meridian purge` through the admin API, on a primary node. */
  purge?: PurgeAdmin;
  close(): Promise<void>;
}

/**
 * Garbage collection on a node (ADR 0012). A primary node collects its own region in-process
 * (its writers and the collector share the registry's `ContentGuard`): on the BullMQ schedule
 * when Redis is configured, on a timer when it is not. Replica regions are collected by their
 * workers (`gcForWorkers`). The admin API runs any region on demand through the GC queues.
 */
export async function openNodeGc(
  config: NodeConfig,
  role: 'primary' | 'replica',
  deps: {
    registry: Registry;
    store: ObjectStore;
    queues?: ReplicationQueues;
    log: Logger;
    /** Pull records of every region, for `--not-pulled-for`. */
    usage?: UsageReader;
  },
): Promise<NodeGc> {
  const { registry, queues, log } = deps;
  const regions = config.regions.length > 0 ? config.regions.map((r) => r.name) : [config.region];
  const graceMs = config.gc.graceSeconds * 1000;
  const adminOf = (service: GcService): GcAdmin => ({
    run: async (req) => {
      try {
        return await service.run(req);
      } catch (err) {
        if (err instanceof GcRequestError)
          throw new OciError('UNSUPPORTED', err.message, undefined, 400);
        // The run was taken and failed (e.g. paused because the region has several nodes).
        if (err instanceof GcRunFailed || err instanceof OciError)
          throw new OciError('UNAVAILABLE', err.message, undefined, 503);
        throw err;
      }
    },
    history: () => service.history(),
    regions: () => service.regions(),
  });
  if (role !== 'primary') {
    // A replica node collects nothing itself; with Redis it can still show and queue runs.
    if (!queues) return { close: async () => {} };
    const service = new GcService({
      region: config.region,
      regions,
      redis: queues.redis,
      bullPrefix: queues.bullPrefix,
      graceMs,
      minGraceMs: config.gc.minGraceSeconds * 1000,
    });
    return { admin: adminOf(service), close: async () => {} };
  }
  const collector = new GarbageCollector({
    region: config.region,
    store: deps.store,
    role: 'primary',
    // In-process lock, plus the store fence once the region has several nodes (ADR 0024).
    guard: registry.guard,
    purgeUploads: () => registry.uploads.purgeExpired(),
    // Soft-deleted manifests past their retention are purged at the start of each run.
    purgeTombstones: () => registry.recycleBin.purge(),
    // An unlink is a change like any other: replicas converge to it through replication.
    onUnlinked: (repository, digest) =>
      registry.events.emit({ type: 'blobDeleted', repository, digest, at: Date.now() }),
  });
  const service = new GcService({
    region: config.region,
    regions,
    collector,
    redis: queues?.redis,
    bullPrefix: queues?.bullPrefix ?? '',
    graceMs,
    minGraceMs: config.gc.minGraceSeconds * 1000,
  });
  // Every delete leaves a note for the next incremental run (a durable event subscriber).
  const detachCandidates = await attachGcCandidates(registry, deps.store);
  let schedule: RunningGc | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (queues) {
    schedule = await startGcSchedule({
      redis: queues.redis,
      bullPrefix: queues.bullPrefix,
      regions: [{ name: config.region, collector }],
      intervalSeconds: config.gc.enabled ? config.gc.intervalSeconds : 0,
      fullIntervalSeconds: config.gc.enabled ? config.gc.fullIntervalSeconds : 0,
      replicaRegions: config.regions.filter((r) => r.role === 'replica').map((r) => r.name),
      epoch: () => redisEpoch(queues.redis, queues.prefix),
      graceMs,
      log,
    });
  } else if (config.gc.enabled) {
    // One process, no Redis: incremental runs on a timer, a full run every fullIntervalSeconds.
    let running = false;
    let lastFull = Date.now();
    timer = setInterval(() => {
      if (running) return;
      running = true;
      const full = Date.now() - lastFull >= config.gc.fullIntervalSeconds * 1000;
      if (full) lastFull = Date.now();
      service
        .run({ mode: full ? 'full' : 'incremental' })
        .then((r) => log.info(r, 'garbage collection finished'))
        .catch((err: unknown) =>
          log.warn({ err: (err as Error).message }, 'garbage collection failed'),
        )
        .finally(() => (running = false));
    }, config.gc.intervalSeconds * 1000).unref();
  }
  return {
    admin: adminOf(service),
    purge: purgeAdmin(registry, deps.store, deps.usage),
    close: async () => {
      if (timer) clearInterval(timer);
      await schedule?.close();
      await detachCandidates();
    },
  };
}

/**
 * Purge removes through the registry, so every removal is an ordinary event (replicated,
 * audited, noted for GC), each re-checked at the moment it goes; locked content is skipped.
 */
export function purgeTarget(
  registry: Registry,
  layout: RepositoryLayout,
  usage?: UsageReader,
): PurgeTarget {
  const denied = (err: unknown): boolean =>
    err instanceof OciError && (err.code === 'DENIED' || err.code === 'MANIFEST_UNKNOWN');
  /** `--include-locked`: lifts the tag's or manifest's own lock (a repository's stays). */
  const unlock = async (repository: string, at: { tag: string } | { digest: string }) => {
    const locks = await registry.locks.fresh(repository);
    const own = 'tag' in at ? locks.tags.get(at.tag) : locks.manifests.get(at.digest);
    if (own && (own.deleteEnabled === false || own.writeEnabled === false))
      await registry.lockAdmin.change(
        repository,
        'tag' in at ? { scope: 'tag', tag: at.tag } : { scope: 'manifest', digest: at.digest },
        { deleteEnabled: true, writeEnabled: true },
      );
  };
  /**
   * The re-check and the removal hold the guard a push holds shared (ADR 0021): a tag push to
   * the repository, or a push of this manifest, lands wholly before (the re-check sees it) or
   * after (it writes the manifest again). Tags are read from the store, not the cache: a push
   * that just released the guard has not refreshed the cache yet.
   */
  const tagsAt = async (repository: string, digest: string): Promise<boolean> => {
    for (const t of await layout.listTags(repository))
      if ((await layout.readTag(repository, t))?.digest === digest) return true;
    return false;
  };
  /** Whether a manifest pushed since the plan (not in `known`) names `digest` as a child. */
  const namedSince = async (repository: string, digest: string, known: ReadonlySet<string>) => {
    for (const d of await layout.listRevisions(repository)) {
      if (known.has(d)) continue;
      const rev = await layout.readRevision(repository, parseDigest(d));
      if (!rev) continue;
      try {
        const m = parseManifest(await layout.readBlob(parseDigest(d)), rev.mediaType);
        if (m.children.some((c) => c.digest === digest)) return true;
      } catch {
        return true; // unreadable: it might name it
      }
    }
    return false;
  };
  return {
    // Each removal re-checks and removes under the repository's lock (every manifest push into
    // it holds the lock shared while it writes) and, with other nodes in the region, a claim in
    // the store that their pushes respect (ADR 0021).
    deleteTag: (repository, tag, digest, opts) =>
      registry.guard.removing(
        repository,
        repoLock(repository),
        async (valid) => {
          if ((await layout.readTag(repository, tag))?.digest !== digest) return false;
          try {
            // A manifest's write lock locks its tags too: both are lifted.
            if (opts?.unlock) {
              await unlock(repository, { tag });
              await unlock(repository, { digest });
            }
            // Locks are enforced at the removal too (one may have been set since the plan).
            await registry.locks.assertTagDeletable(repository, tag, digest);
            // A claim held too long may no longer keep other nodes' pushes out: keep the tag.
            if (!valid()) return false;
            return await registry.tags.delete(repository, tag);
          } catch (err) {
            if (denied(err)) return false;
            throw err;
          }
        },
        false,
      ),
    deleteManifest: (repository, digest, opts) =>
      // Also a push of an index naming it: every manifest push holds the repository.
      registry.guard.removing(
        repository,
        repoLock(repository),
        async (valid) => {
          if (await tagsAt(repository, digest)) return false;
          if (opts?.known && (await namedSince(repository, digest, opts.known))) return false;
          try {
            if (opts?.unlock) await unlock(repository, { digest });
            if (!valid()) return false;
            await registry.manifests.delete(repository, digest);
            return true;
          } catch (err) {
            if (denied(err)) return false;
            throw err;
          }
        },
        false,
      ),
    ...(usage && {
      lastPulled: async (repository) => {
        const u = await usage.repository(repository);
        const last = (r: Record<string, { lastPulledAt?: number }>) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.lastPulledAt]));
        return { tags: last(u.tags), manifests: last(u.manifests), unreadable: u.unreadable };
      },
    }),
    lockedBy: async (repository, at) => {
      const locks = await registry.locks.of(repository);
      const lock = effectiveLock(locks, { ...at, tagExists: at.tag !== undefined });
      return lock.deleteEnabled ? undefined : (lock.lockedBy.deleteEnabled ?? 'a lock');
    },
  };
}

function purgeAdmin(registry: Registry, store: ObjectStore, usage?: UsageReader): PurgeAdmin {
  const layout = new RepositoryLayout(store);
  const target = purgeTarget(registry, layout, usage);
  return { run: (req) => runPurge(layout, target, req) };
}
