import type { Logger } from 'pino';
import type { ReplicationStatus, RegionInfo } from '@meridian/replication';
import type { ObjectStore } from '@meridian/storage';
import {
  attachWebhooks,
  startDeliveryWorker,
  TargetGuard,
  WebhookQueue,
  WebhookService,
  WebhookStore,
  type WebhookEventSource,
} from '@meridian/webhooks';
import { ConfigError, type NodeConfig, type ResolvedNode } from './config';

export interface NodeWebhooks {
  service: WebhookService;
  close(): Promise<void>;
}

/**
 * Webhooks for a node: every node serves the admin API over the definitions in the primary
 * region's store; the primary (with Redis, `webhooks.enabled`) also attaches the `webhooks`
 * event subscriber, and runs the delivery worker unless `webhooks.delivery` is `workers`.
 */
export async function openWebhooks(
  config: NodeConfig,
  node: ResolvedNode,
  deps: {
    events: WebhookEventSource;
    store: ObjectStore;
    regions: RegionInfo[];
    status: ReplicationStatus | undefined;
    log: Logger;
  },
): Promise<NodeWebhooks> {
  const c = config.webhooks;
  const guard = guardOf(config);
  const primary = deps.regions.find((r) => r.role === 'primary');
  const store = new WebhookStore(primary?.store ?? deps.store);
  const host = c.host ?? (primary ? new URL(primary.endpoint).host : node.listen);
  const queue = queueOf(config);
  const service = new WebhookService({
    store,
    queue,
    guard,
    regions: deps.regions.map((r) => r.name),
    region: config.region,
    host,
    timeoutMs: c.timeoutMs,
  });
  if (!queue || node.role !== 'primary') return { service, close: async () => queue?.close() };
  const detach = await attachWebhooks(
    { events: deps.events },
    { queue, store, host, region: config.region, log: deps.log },
  );
  const worker =
    c.delivery === 'node' ? deliveryWorker(config, queue, store, deps.status, deps.log) : undefined;
  return {
    service,
    close: async () => {
      await detach();
      if (worker) await within(worker.close(true));
      await queue.close();
    },
  };
}

/**
 * `meridian worker` with `webhooks.delivery: workers`: sends the deliveries the primary queued,
 * so a node's event loop does not share its time with them. Undefined when not configured so.
 */
export function startWebhookWorkers(
  config: NodeConfig,
  regions: RegionInfo[],
  status: ReplicationStatus,
  log: Logger,
): { close(): Promise<void> } | undefined {
  const queue = config.webhooks.delivery === 'workers' ? queueOf(config) : undefined;
  const primary = regions.find((r) => r.role === 'primary');
  if (!queue || !primary) return undefined;
  const worker = deliveryWorker(config, queue, new WebhookStore(primary.store), status, log);
  return {
    close: async () => {
      await within(worker.close(true));
      await queue.close();
    },
  };
}

function deliveryWorker(
  config: NodeConfig,
  queue: WebhookQueue,
  store: WebhookStore,
  status: ReplicationStatus | undefined,
  log: Logger,
) {
  const c = config.webhooks;
  return startDeliveryWorker({
    queue,
    store,
    guard: guardOf(config),
    log,
    regions: status,
    concurrency: c.concurrency,
    perEndpoint: c.perEndpointConcurrency,
    timeoutMs: c.timeoutMs,
  });
}

function guardOf(config: NodeConfig): TargetGuard {
  try {
    return new TargetGuard(config.webhooks.allowPrivateTargets);
  } catch (err) {
    throw new ConfigError(
      `config key "webhooks.allowPrivateTargets" (MERIDIAN_WEBHOOKS_ALLOW_PRIVATE_TARGETS): ${(err as Error).message}`,
    );
  }
}

function queueOf(config: NodeConfig): WebhookQueue | undefined {
  const c = config.webhooks;
  if (!config.redis || !c.enabled) return undefined;
  return new WebhookQueue({
    redisUrl: config.redis,
    prefix: config.replication.prefix,
    retry: { baseMs: c.retryBaseMs, maxMs: c.retryMaxMs, horizonMs: c.horizonHours * 3_600_000 },
    historyMs: c.historyDays * 86_400_000,
  });
}

/**
 * Waits for `p` at most `ms`: with Redis unreachable a BullMQ worker's close waits for it
 * forever, and a node must still stop (its jobs are in Redis and run again later).
 */
async function within(p: Promise<unknown>, ms = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((r) => (timer = setTimeout(r, ms))),
  ]);
  clearTimeout(timer);
}
