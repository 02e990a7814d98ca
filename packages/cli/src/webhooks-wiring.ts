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
 * event subscriber and runs the delivery worker.
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
  let guard: TargetGuard;
  try {
    guard = new TargetGuard(c.allowPrivateTargets);
  } catch (err) {
    throw new ConfigError(
      `config key "webhooks.allowPrivateTargets" (MERIDIAN_WEBHOOKS_ALLOW_PRIVATE_TARGETS): ${(err as Error).message}`,
    );
  }
  const primary = deps.regions.find((r) => r.role === 'primary');
  const store = new WebhookStore(primary?.store ?? deps.store);
  const host = c.host ?? (primary ? new URL(primary.endpoint).host : node.listen);
  const queue =
    config.redis && c.enabled
      ? new WebhookQueue({
          redisUrl: config.redis,
          prefix: config.replication.prefix,
          retry: {
            baseMs: c.retryBaseMs,
            maxMs: c.retryMaxMs,
            horizonMs: c.horizonHours * 3_600_000,
          },
          historyMs: c.historyDays * 86_400_000,
        })
      : undefined;
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
  const worker = startDeliveryWorker({
    queue,
    store,
    guard,
    log: deps.log,
    regions: deps.status,
    concurrency: c.concurrency,
    perEndpoint: c.perEndpointConcurrency,
    timeoutMs: c.timeoutMs,
  });
  return {
    service,
    close: async () => {
      await detach();
      await worker.close();
      await queue.close();
    },
  };
}
