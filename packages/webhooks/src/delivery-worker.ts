import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { backoffDelay, Breakers, EndpointSlots } from './backoff';
import type { SendResult } from './http-send';
import { deliveryAttempts, deliveryDuration, deliveryLatency } from './metrics';
import { encode, type Notification } from './payload';
import { attemptOf, postDelivery } from './post';
import type { TargetGuard } from './target-guard';
import { QUEUE_NAME, type DeliveryJob, type RegionWait, type WebhookQueue } from './webhook-queue';
import type { WebhookStore } from './webhook-store';

/** Per-region visibility of an object (implemented by replication's `ReplicationStatus`). */
export interface RegionVisibility {
  objectStatus(
    repository: string,
    reference: string,
  ): Promise<{ region: string; state: string; replicatedAt: string | null }[]>;
}

export interface DeliveryWorkerOptions {
  queue: WebhookQueue;
  store: WebhookStore;
  guard: TargetGuard;
  log: Logger;
  /** Needed for regional webhooks and `replicated`; without it they are dead-lettered. */
  regions?: RegionVisibility;
  /** Deliveries in flight at once in this process. Default 16. */
  concurrency?: number;
  /** Deliveries in flight at once to one webhook, in this process. Default 4. */
  perEndpoint?: number;
  /** A receiver that has not answered in this long has failed the attempt (ms). Default 10 000. */
  timeoutMs?: number;
}

/** A failed attempt to retry (after `retryAfterMs` when the receiver said so). */
class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/**
 * Sends queued deliveries. Each job: the webhook must still exist and be enabled; a regional or
 * `replicated` delivery waits (delayed, no attempt counted) until the regions show the change; an
 * endpoint whose breaker is open, or that has `perEndpoint` deliveries in flight, is skipped for
 * now (delayed) so it never takes workers from others; then one signed POST. 2xx: delivered.
 * 5xx, 408, 429 (its `Retry-After` honoured), network errors: retried with exponential backoff
 * and jitter up to the horizon, then dead-lettered. Other 4xx, 3xx and refused targets:
 * dead-lettered at once.
 */
export function startDeliveryWorker(opts: DeliveryWorkerOptions): Worker<DeliveryJob> {
  const { queue, log } = opts;
  const breakers = new Breakers();
  const slots = new EndpointSlots(opts.perEndpoint ?? 4);
  const worker = new Worker<DeliveryJob>(QUEUE_NAME, (job, token) => run(job, token), {
    connection: queue.redis.duplicate({ maxRetriesPerRequest: null }),
    prefix: queue.bullPrefix,
    concurrency: opts.concurrency ?? 16,
    stalledInterval: 5000,
    lockDuration: 30_000,
    settings: {
      backoffStrategy: (attemptsMade, _type, err) =>
        (err instanceof RetryableError ? err.retryAfterMs : undefined) ??
        backoffDelay(attemptsMade, queue.retry),
    },
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'webhook worker error'));

  const later = async (job: Job<DeliveryJob>, token: string | undefined, at: number) => {
    await job.moveToDelayed(at, token);
    throw new DelayedError();
  };

  async function run(job: Job<DeliveryJob>, token: string | undefined): Promise<void> {
    const d = job.data;
    const record = await queue.history.get(d.id);
    const hook = (await opts.store.all()).find((w) => w.name === d.webhook);
    /** Leaves the repository's line and wakes the delivery next in it. */
    const finish = async () => {
      if (!d.ordered) return;
      const next = await queue.order.done(d.webhook, d.ordered.repository, d.id);
      const waiting = next ? await Job.fromId(queue.queue, next) : undefined;
      if (waiting && (await waiting.isDelayed())) await waiting.promote().catch(() => {});
    };
    if (!record) return finish(); // expired from the history, or the webhook was deleted
    if (!hook || hook.status !== 'enabled') {
      await queue.history.update(d.id, {
        state: 'skipped',
        reason: hook ? 'the webhook is disabled' : 'the webhook was deleted',
      });
      return finish();
    }
    if (d.ordered) {
      const ahead = await queue.order.ahead(hook.name, d.ordered.repository, d.id, finished);
      // Woken by the delivery ahead when it finishes; the delay is only the backstop.
      if (ahead > 0) await later(job, token, Date.now() + Math.min(2000, 200 + 20 * ahead));
    }
    let body = record.body;
    if (d.wait) {
      const seen = await visible(d.wait);
      if (!seen.ok) {
        if (Date.now() - d.firstAt > queue.retry.horizonMs) {
          await queue.history.update(d.id, { state: 'failed', reason: seen.reason });
          deliveryAttempts.inc({ webhook: hook.name, outcome: 'failed' });
          return finish();
        }
        const waits = (d.waits ?? 0) + 1;
        await job.updateData({ ...d, waits });
        await later(job, token, Date.now() + Math.min(30_000, 250 * 2 ** Math.min(waits, 7)));
      }
      if (d.notification && seen.regions) {
        body = encode({ ...d.notification, regions: seen.regions }, hook.format).body;
        await queue.history.update(d.id, { state: 'pending', body });
      }
    }
    const open = breakers.openUntil(hook.name);
    if (open) await later(job, token, open + Math.floor(Math.random() * 500));
    if (!slots.tryAcquire(hook.name))
      await later(job, token, Date.now() + 200 + Math.floor(Math.random() * 300));
    let result: SendResult;
    let sentHeaders: Record<string, string>;
    try {
      ({ result, sentHeaders } = await postDelivery(hook, record.id, record.contentType, body, {
        guard: opts.guard,
        timeoutMs: opts.timeoutMs,
      }));
    } finally {
      slots.release(hook.name);
    }
    const attempt = attemptOf(result, sentHeaders, hook);
    const status = result.status;
    if (status !== undefined)
      deliveryDuration.observe({ webhook: hook.name }, result.durationMs / 1000);
    if (status !== undefined && status >= 200 && status < 300) {
      breakers.success(hook.name);
      await queue.history.update(d.id, { state: 'delivered' }, attempt);
      deliveryAttempts.inc({ webhook: hook.name, outcome: 'delivered' });
      deliveryLatency.observe(
        { webhook: hook.name },
        (Date.now() - Date.parse(record.createdAt)) / 1000,
      );
      return finish();
    }
    const why = result.error ?? `the receiver answered ${status}`;
    const retryable =
      !result.refused &&
      (status === undefined || status >= 500 || status === 408 || status === 429);
    if (!retryable) {
      const reason = result.refused
        ? `target refused: ${why}`
        : status !== undefined && status < 400
          ? `the receiver answered ${status}: redirects are not followed`
          : why;
      await queue.history.update(d.id, { state: 'failed', reason }, attempt);
      deliveryAttempts.inc({ webhook: hook.name, outcome: 'failed' });
      await finish();
      throw new UnrecoverableError(reason);
    }
    if (status !== 429) breakers.failure(hook.name);
    const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    await queue.history.update(
      d.id,
      { state: last ? 'failed' : 'retrying', reason: last ? `gave up: ${why}` : why },
      attempt,
    );
    deliveryAttempts.inc({ webhook: hook.name, outcome: last ? 'failed' : 'retrying' });
    if (last) await finish();
    throw new RetryableError(why, result.retryAfterMs);
  }

  /** Whether a delivery is over (or gone), so it no longer holds its repository's line. */
  async function finished(id: string): Promise<boolean> {
    const r = await queue.history.get(id);
    return !r || r.state === 'delivered' || r.state === 'failed' || r.state === 'skipped';
  }

  async function visible(
    w: RegionWait,
  ): Promise<{ ok: boolean; reason?: string; regions?: Notification['regions'] }> {
    if (!opts.regions) return { ok: false, reason: 'regional delivery needs the cluster status' };
    const all = await opts.regions.objectStatus(w.repository, w.reference);
    const wanted = w.regions === 'all' ? all : all.filter((s) => w.regions.includes(s.region));
    const missing = wanted.filter((s) =>
      w.until === 'present' ? s.state !== 'replicated' : s.state === 'replicated',
    );
    if (wanted.length === 0 || missing.length > 0)
      return {
        ok: false,
        reason: `not ${w.until === 'present' ? 'servable' : 'removed'} in ${missing.map((s) => s.region).join(', ') || 'the regions'} within the horizon`,
      };
    return {
      ok: true,
      regions: wanted.map((s) => ({ region: s.region, replicatedAt: s.replicatedAt })),
    };
  }

  return worker;
}
