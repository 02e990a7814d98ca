import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { bullmq, createRedis, type RedisConnection } from '@meridian/redis';
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
  /**
   * An event's deliveries queued as one job (`fan-<notification id>`, `webhook` empty): each
   * the head of its line, with nothing to wait for. One BullMQ job per event instead of one per
   * webhook: BullMQ's own bookkeeping is most of a delivery's Redis work.
   */
  fan?: DeliveryJob[];
}

/** One delivery to queue (see `WebhookQueue.enqueueAll`). */
export interface Enqueue {
  hook: Webhook;
  n: Notification;
  wait?: RegionWait;
  sequence?: number;
}

export interface WebhookQueueOptions {
  /** A `redis://` URL, or Sentinels and the master's name (`@meridian/redis`). */
  redisUrl: RedisConnection;
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
 * How long a delivery behind others in its repository's line waits at most before it looks
 * again (ms); the delivery ahead of it wakes it when it finishes, so this is only the backstop.
 */
export const PARKED_MS = 5000;

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
    this.redis = createRedis(opts.redisUrl, { maxRetriesPerRequest: null });
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.history = new DeliveryHistory(this.redis, this.prefix, {
      retentionMs: opts.historyMs ?? 7 * 86_400_000,
      maxPerWebhook: opts.historyPerWebhook ?? 1000,
    });
    this.order = new RepositoryOrder(this.redis, this.prefix, this.retry.horizonMs + 86_400_000);
    this.queue = new (bullmq().Queue)<DeliveryJob>(QUEUE_NAME, {
      connection: this.redis,
      prefix: this.bullPrefix,
      defaultJobOptions: {
        attempts: attemptsWithin(this.retry),
        backoff: { type: 'webhook' },
        // The delivery history is the record of what was sent; a finished BullMQ job is not
        // needed (a replayed event is recognised by its history record), so it goes at once.
        removeOnComplete: true,
        removeOnFail: { count: 10_000 },
      },
    });
  }

  get bullPrefix(): string {
    return `${this.prefix}:bull`;
  }

  /** Queues one delivery (see `enqueueAll`). Returns its id. */
  async enqueue(
    hook: Webhook,
    n: Notification,
    wait?: RegionWait,
    sequence?: number,
  ): Promise<string> {
    const [id] = await this.enqueueAll([{ hook, n, wait, sequence }]);
    return id!;
  }

  /**
   * Queues each notification for its webhook, once: a repeat with the same id (a replayed event)
   * is queued again only if it never got past the queue. With `sequence`, a delivery is sent
   * only after its repository's earlier deliveries to the webhook. A few round trips to Redis
   * for the whole batch, whatever its size: this runs on the primary for every event.
   */
  async enqueueAll(items: readonly Enqueue[]): Promise<string[]> {
    const now = new Date();
    // One body per (notification, format), however many webhooks get it.
    const bodies = new Map<string, { body: string; type: string }>();
    const prepared = items.map(({ hook, n, wait, sequence }) => {
      const id = deliveryId(hook.name, n.id);
      const bodyKey = `${n.id} ${hook.format}`;
      let encoded = bodies.get(bodyKey);
      if (!encoded) bodies.set(bodyKey, (encoded = encode(n, hook.format)));
      const record: DeliveryRecord = {
        id,
        webhook: hook.name,
        action: n.action,
        repository: n.target.repository,
        reference: n.target.tag ?? n.target.digest,
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
        state: wait ? 'waiting' : 'pending',
        contentType: encoded.type,
        body: encoded.body,
        attempts: [],
      };
      const ordered =
        sequence === undefined ? undefined : { repository: n.target.repository, sequence };
      const job: DeliveryJob = {
        id,
        webhook: hook.name,
        ...(n.action === 'replicated' && { notification: n }),
        ...(wait && { wait }),
        firstAt: now.getTime(),
        ...(ordered && { ordered }),
      };
      return { id, record, ordered, job, action: n.action, event: n.id };
    });
    const created = await this.history.createAll(prepared.map((p) => p.record));
    const go = [];
    const fresh = new Set<string>();
    for (const [i, p] of prepared.entries()) {
      if (created[i]) fresh.add(p.id);
      if (created[i]) deliveriesQueued.inc({ webhook: p.record.webhook });
      else {
        // A replayed event that was tried already is in the history: it is not sent twice.
        const seen = await this.history.get(p.id);
        if (seen && seen.state !== 'pending' && seen.state !== 'waiting') continue;
      }
      go.push(p);
    }
    const inLine = go.filter((p) => p.ordered);
    const ahead = await this.order.addAll(
      inLine.map((p) => ({ webhook: p.record.webhook, ...p.ordered!, id: p.id })),
    );
    const parked = new Set(inLine.filter((_, i) => ahead[i]! > 0).map((p) => p.id));
    // An event's new deliveries that can be sent now go as one job; the others one job each.
    const fans = new Map<string, typeof go>();
    const single: typeof go = [];
    for (const p of go) {
      if (fresh.has(p.id) && !parked.has(p.id) && !p.job.wait)
        fans.set(p.event, [...(fans.get(p.event) ?? []), p]);
      else single.push(p);
    }
    const jobs = single.map((p) => ({
      name: p.action,
      data: p.job,
      // Behind others in its line: parked until the one ahead wakes it (the delay is only
      // the backstop), instead of being taken by a worker only to be put back.
      opts: { jobId: p.id, ...(parked.has(p.id) && { delay: PARKED_MS }) },
    }));
    for (const [event, members] of fans) {
      if (members.length === 1) {
        jobs.push({
          name: members[0]!.action,
          data: members[0]!.job,
          opts: { jobId: members[0]!.id },
        });
        continue;
      }
      const id = `fan-${event}`;
      jobs.push({
        name: 'fan',
        data: { id, webhook: '', firstAt: now.getTime(), fan: members.map((p) => p.job) },
        opts: { jobId: id },
      });
    }
    if (jobs.length > 0) await this.queue.addBulk(jobs);
    return prepared.map((p) => p.id);
  }

  /**
   * Wakes a parked (delayed) delivery now; false when it is not parked (running, done, or not
   * queued yet).
   */
  async wake(id: string): Promise<boolean> {
    // Promoting needs only the id: no read of the job's hash first (one round trip, not two).
    const { Job } = bullmq();
    const job = new Job<DeliveryJob>(this.queue, 'wake', { id, webhook: '', firstAt: 0 }, {}, id);
    return job.promote().then(
      () => true,
      () => false,
    );
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

  /**
   * Closes the queue; with Redis unreachable BullMQ's close would wait for it forever, so it
   * gets 2 s before the connection is dropped (nothing is lost: jobs live in Redis).
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.queue.close().catch(() => undefined),
      new Promise<void>((r) => (timer = setTimeout(r, 2000))),
    ]);
    clearTimeout(timer);
    this.redis.disconnect();
  }
}

/** `<webhook>-<notification id>`: stable, and a valid BullMQ job id (no `:`). */
export function deliveryId(webhook: string, notificationId: string): string {
  return `${webhook}-${notificationId}`;
}
