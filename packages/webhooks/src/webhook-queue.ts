import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { attemptsWithin, DEFAULT_RETRY, type RetryPolicy } from './backoff';
import { encode, type Notification } from './payload';
import type { Webhook } from './definition';
import { DeliveryHistory, type DeliveryRecord } from './history';
import { deliveriesQueued } from './metrics';
import { RepositoryOrder } from './repository-order';

/** A region condition a delivery waits for before it is sent. */
export interface RegionWait {
  /** Region names, or `all` (every region of the cluster, `replicated`). */
  regions: string[] | 'all';
  repository: string;
  /** Tag or digest. */
  reference: string;
  /** `present`: the region serves it (pushes); `absent`: it no longer does (deletes). */
  until: 'present' | 'absent';
}

export interface DeliveryJob {
  /** The delivery's id (history record, `webhook-id`). */
  id: string;
  webhook: string;
  /** For `replicated`: the notification, to add the regions' times once they are known. */
  notification?: Notification;
  wait?: RegionWait;
  /** When the delivery was first queued (ms): the horizon counts from here. */
  firstAt: number;
  /** How many times it waited for a region so far. */
  waits?: number;
  /** Sent in this order among its repository's deliveries to the webhook (event sequence). */
  ordered?: { repository: string; sequence: number };
}

export interface WebhookQueueOptions {
  redisUrl: string;
  /** Redis key prefix (shared with replication). Default `meridian`. */
  prefix?: string;
  retry?: Partial<RetryPolicy>;
  /** Delivery history kept this long (ms). Default 7 days. */
  historyMs?: number;
  /** Deliveries kept per webhook in the history. Default 1000. */
  historyPerWebhook?: number;
}

export const QUEUE_NAME = 'webhooks';

/**
 * The delivery queue (BullMQ) and the delivery history: one job per (webhook, notification),
 * de-duplicated by its id, so an event the dispatcher delivers twice is queued once.
 */
export class WebhookQueue {
  readonly redis: Redis;
  readonly prefix: string;
  readonly queue: Queue<DeliveryJob>;
  readonly history: DeliveryHistory;
  readonly retry: RetryPolicy;
  readonly order: RepositoryOrder;

  constructor(opts: WebhookQueueOptions) {
    this.prefix = opts.prefix ?? 'meridian';
    this.redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.history = new DeliveryHistory(this.redis, this.prefix, {
      retentionMs: opts.historyMs ?? 7 * 86_400_000,
      maxPerWebhook: opts.historyPerWebhook ?? 1000,
    });
    this.order = new RepositoryOrder(this.redis, this.prefix, this.retry.horizonMs + 86_400_000);
    this.queue = new Queue<DeliveryJob>(QUEUE_NAME, {
      connection: this.redis,
      prefix: this.bullPrefix,
      defaultJobOptions: {
        attempts: attemptsWithin(this.retry),
        backoff: { type: 'webhook' },
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 10_000 },
      },
    });
  }

  get bullPrefix(): string {
    return `${this.prefix}:bull`;
  }

  /**
   * Queues `n` for `hook` (once: a repeat with the same id is ignored). With `sequence`, it is
   * sent only after the repository's earlier deliveries to the webhook. Returns the delivery id.
   */
  async enqueue(
    hook: Webhook,
    n: Notification,
    wait?: RegionWait,
    sequence?: number,
  ): Promise<string> {
    const id = deliveryId(hook.name, n.id);
    const { body, type } = encode(n, hook.format);
    const now = new Date();
    const record: DeliveryRecord = {
      id,
      webhook: hook.name,
      action: n.action,
      repository: n.target.repository,
      reference: n.target.tag ?? n.target.digest,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      state: wait ? 'waiting' : 'pending',
      contentType: type,
      body,
      attempts: [],
    };
    if (await this.history.create(record)) deliveriesQueued.inc({ webhook: hook.name });
    else {
      // A replayed event: queue it again only if it never got past the queue (a crash between
      // the record and the job); one that was tried is in the history and is not sent twice.
      const seen = await this.history.get(id);
      if (seen && seen.state !== 'pending' && seen.state !== 'waiting') return id;
    }
    const ordered =
      sequence === undefined ? undefined : { repository: n.target.repository, sequence };
    if (ordered) await this.order.add(hook.name, ordered.repository, id, sequence!);
    await this.queue.add(
      n.action,
      {
        id,
        webhook: hook.name,
        ...(n.action === 'replicated' && { notification: n }),
        wait,
        firstAt: now.getTime(),
        ordered,
      },
      { jobId: id },
    );
    return id;
  }

  /** Sends a delivery again (a new job for the same record and body). */
  async redeliver(record: DeliveryRecord): Promise<void> {
    await this.history.update(record.id, { state: 'pending' });
    await this.queue.add(
      record.action,
      { id: record.id, webhook: record.webhook, firstAt: Date.now() },
      { jobId: `${record.id}-r${Date.now()}` },
    );
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.redis.disconnect();
  }
}

/** `<webhook>-<notification id>`: stable, and a valid BullMQ job id (no `:`). */
export function deliveryId(webhook: string, notificationId: string): string {
  return `${webhook}-${notificationId}`;
}
