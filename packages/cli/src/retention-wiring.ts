import type { Logger } from 'pino';
import {
  attachUntaggedRetention,
  compileRule,
  RetentionRequestError,
  RetentionService,
  startRetentionSchedule,
  UntaggedRetention,
} from '@meridian/lifecycle';
import { OciError } from '@meridian/oci';
import type { Registry, RetentionAdmin, UsageReader } from '@meridian/registry';
import type { ReplicationQueues } from '@meridian/replication';
import { RepositoryLayout, type ObjectStore } from '@meridian/storage';
import type { NodeConfig } from './config';
import { purgeTarget } from './gc-wiring';

export interface NodeRetention {
  /** The admin API's view (`/meridian/v1/admin/retention`), on the primary. */
  admin?: RetentionAdmin;
  close(): Promise<void>;
}

/**
 * Retention on the primary node (ADR 0021): the untagged policy from config (its moment of
 * enabling kept in the store), the durable `retention` subscriber that schedules untagged
 * manifests, the rules, and their BullMQ schedule (a timer without Redis). Removals go through
 * the purge adapter, so each is an ordinary event every region follows.
 */
export async function openNodeRetention(
  config: NodeConfig,
  role: 'primary' | 'replica',
  deps: {
    registry: Registry;
    store: ObjectStore;
    queues?: ReplicationQueues;
    usage?: UsageReader;
    log: Logger;
    /** The clock (tests). Default `Date.now`. */
    now?: () => number;
  },
): Promise<NodeRetention> {
  if (role !== 'primary') return { close: async () => {} };
  const { registry, store, log } = deps;
  const rc = config.retention;
  const rules = rc.rules.map(compileRule); // config already validated the shapes
  const untagged = new UntaggedRetention(store, deps.now);
  await untagged.setPolicy(rc.untagged);
  const layout = new RepositoryLayout(store);
  const service = new RetentionService({
    store,
    layout,
    target: purgeTarget(registry, layout, deps.usage),
    rules,
    untagged,
    now: deps.now,
    onRemoved: (repository, rule, removed) =>
      registry.events.emit({
        type: 'retentionFinished',
        repository,
        rule,
        ...removed,
        at: Date.now(),
      }),
  });
  const detach = await attachUntaggedRetention(registry.events, untagged);
  let schedule: { close(): Promise<void> } | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (deps.queues)
    schedule = await startRetentionSchedule({
      redis: deps.queues.redis,
      bullPrefix: deps.queues.bullPrefix,
      region: config.region,
      service,
      intervalSeconds: rc.intervalSeconds,
      log,
    });
  else if (rc.intervalSeconds > 0)
    timer = setInterval(() => {
      void service
        .run({})
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'retention run failed'));
    }, rc.intervalSeconds * 1000).unref();
  const mapped = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RetentionRequestError)
        throw new OciError('NAME_UNKNOWN', err.message, undefined, 404);
      throw err;
    }
  };
  return {
    admin: {
      status: () => service.status(),
      run: (req, by) => mapped(() => service.run({ ...req, by })),
      approve: (name, by) => mapped(() => service.approve(name, by)),
    },
    close: async () => {
      if (timer) clearInterval(timer);
      await schedule?.close();
      await detach();
    },
  };
}
