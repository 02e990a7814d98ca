import type { ChainableCommander, Redis } from 'ioredis';

/** One attempt to deliver (or ping): what was sent and what came back, bodies truncated. */
export interface Attempt {
  at: string;
  /** The receiver's status; absent when none answered. */
  status?: number;
  error?: string;
  durationMs: number;
  /** Sent headers; custom header values masked. */
  requestHeaders: Record<string, string>;
  responseHeaders: Record<string, string>;
  responseBody: string;
}

export type DeliveryState =
  /** Queued, not tried yet. */
  | 'pending'
  /** Waiting for a region to show the change (regional webhooks, `replicated`). */
  | 'waiting'
  /** Failed at least once, will be tried again. */
  | 'retrying'
  | 'delivered'
  /** Dead-lettered: a permanent refusal, or retries ran past the horizon. */
  | 'failed'
  /** Not sent: the webhook was deleted or disabled before its turn. */
  | 'skipped';

export interface DeliveryRecord {
  /** Stable per (webhook, notification): the `webhook-id` header and the queue's job id. */
  id: string;
  webhook: string;
  action: string;
  repository: string;
  /** The tag, else the digest, the notification is about. */
  reference?: string;
  createdAt: string;
  updatedAt: string;
  state: DeliveryState;
  reason?: string;
  contentType: string;
  /** The request body (the same for every attempt). */
  body: string;
  attempts: Attempt[];
}

/** What a delivery's progress changes in its record. */
export type RecordChange = Partial<Pick<DeliveryRecord, 'state' | 'reason' | 'body'>>;

/** Attempts kept per delivery (the latest ones). */
const MAX_ATTEMPTS_KEPT = 20;

/**
 * Delivery history in Redis: a record per delivery (expiring after the retention) and, per
 * webhook, a sorted set of its deliveries by creation time (trimmed to `maxPerWebhook`). History
 * is operational data, not registry state: a Redis flush loses it, never an image.
 */
export class DeliveryHistory {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: { retentionMs: number; maxPerWebhook: number },
  ) {}

  private recordKey(id: string): string {
    return `${this.prefix}:webhooks:delivery:${id}`;
  }

  private indexKey(webhook: string): string {
    return `${this.prefix}:webhooks:history:${webhook}`;
  }

  /** Stores a new record unless one with its id exists (a replayed event). True when stored. */
  async create(r: DeliveryRecord): Promise<boolean> {
    const [created] = await this.createAll([r]);
    return created!;
  }

  /** `create` for many records, in two round trips. */
  async createAll(records: readonly DeliveryRecord[]): Promise<boolean[]> {
    if (records.length === 0) return [];
    const sets = this.redis.pipeline();
    for (const r of records)
      sets.set(this.recordKey(r.id), JSON.stringify(r), 'PX', this.opts.retentionMs, 'NX');
    const created = ((await sets.exec()) ?? []).map(([err, ok]) => !err && ok === 'OK');
    const index = this.redis.pipeline();
    for (const [i, r] of records.entries()) {
      if (!created[i]) continue;
      const now = Date.parse(r.createdAt);
      const key = this.indexKey(r.webhook);
      index
        .zadd(key, now, r.id)
        .zremrangebyscore(key, '-inf', now - this.opts.retentionMs)
        .zremrangebyrank(key, 0, -this.opts.maxPerWebhook - 1)
        .pexpire(key, this.opts.retentionMs);
    }
    await index.exec();
    return created;
  }

  async get(id: string): Promise<DeliveryRecord | undefined> {
    const raw = await this.redis.get(this.recordKey(id));
    return raw ? (JSON.parse(raw) as DeliveryRecord) : undefined;
  }

  /** Changes a record (read, modify, write: one job works on a delivery at a time). */
  async update(
    id: string,
    change: RecordChange,
    attempt?: Attempt,
  ): Promise<DeliveryRecord | undefined> {
    const r = await this.get(id);
    if (!r) return undefined;
    await this.save(this.redis.pipeline(), r, change, attempt).exec();
    return r;
  }

  /**
   * Applies `change` (and `attempt`) to a record the caller read, and adds its write to
   * `pipeline`: the delivery worker saves a record in the round trip that also finishes it.
   */
  save<P extends ChainableCommander>(
    pipeline: P,
    r: DeliveryRecord,
    change: RecordChange,
    attempt?: Attempt,
  ): P {
    Object.assign(r, change, { updatedAt: new Date().toISOString() });
    if (change.reason === undefined && change.state === 'delivered') delete r.reason;
    if (attempt) r.attempts = [...r.attempts, attempt].slice(-MAX_ATTEMPTS_KEPT);
    pipeline.set(this.recordKey(r.id), JSON.stringify(r), 'KEEPTTL');
    return pipeline;
  }

  /** Adds the read of a record to `pipeline` (parse its answer with `parse`). */
  read<P extends ChainableCommander>(pipeline: P, id: string): P {
    pipeline.get(this.recordKey(id));
    return pipeline;
  }

  parse(raw: unknown): DeliveryRecord | undefined {
    return typeof raw === 'string' ? (JSON.parse(raw) as DeliveryRecord) : undefined;
  }

  /** A webhook's deliveries, newest first. */
  async list(webhook: string, limit = 50): Promise<DeliveryRecord[]> {
    const ids = await this.redis.zrevrange(this.indexKey(webhook), 0, Math.max(0, limit - 1));
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.recordKey(id)));
    return raws.filter((x): x is string => x !== null).map((x) => JSON.parse(x) as DeliveryRecord);
  }

  /** Forgets a webhook's history (when it is deleted). */
  async forget(webhook: string): Promise<void> {
    const ids = await this.redis.zrange(this.indexKey(webhook), '0', '-1');
    const keys = [this.indexKey(webhook), ...ids.map((id) => this.recordKey(id))];
    for (let i = 0; i < keys.length; i += 500) await this.redis.del(...keys.slice(i, i + 500));
  }
}
