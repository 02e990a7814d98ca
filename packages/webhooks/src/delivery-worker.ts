import type { Job, Worker } from 'bullmq';
import { bullmq, workerConnection } from '@meridian/redis';
import type { Logger } from 'pino';
import { backoffDelay, EndpointSlots } from './backoff';
import {
  LocalBreakers,
  SharedBreakers,
  type Admission,
  type BreakerPolicy,
  type CircuitBreaker,
} from './circuit-breaker';
import type { Attempt, DeliveryRecord, RecordChange } from './history';
import type { SendResult } from './http-send';
import { deliveryAttempts, deliveryDuration, deliveryLatency } from './metrics';
import { encode, type Notification } from './payload';
import { attemptOf, postDelivery } from './post';
import type { TargetGuard } from './target-guard';
import {
  PARKED_MS,
  QUEUE_NAME,
  type DeliveryJob,
  type RegionWait,
  type WebhookQueue,
} from './webhook-queue';
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
  /** The per-endpoint circuit breaker's policy (`DEFAULT_BREAKER`). */
  breaker?: Partial<BreakerPolicy>;
  /**
   * Share each endpoint's breaker with every other delivering process through Redis (nodes and
   * workers of every region): N processes open it after `threshold` failures in all and one of
   * them probes. False: each process keeps its own. Default true.
   */
  sharedBreaker?: boolean;
}

/** A delivery as `run` sees it: its own BullMQ job, or one of an event's fanned-out deliveries. */
interface Handle {
  data: DeliveryJob;
  attemptsMade: number;
  attempts: number;
  /** Looks again at `at` (ms since the epoch); never returns. */
  later(at: number): Promise<never>;
  updateData(d: DeliveryJob): Promise<void>;
  /** One of an event's deliveries sent together (waits briefly for an endpoint slot). */
  fanned?: boolean;
}

/** A fanned-out delivery that has to wait: it becomes a job of its own, delayed until `at`. */
class Deferred extends Error {
  constructor(readonly at: number) {
    super('deferred');
  }
}

/** How long a fanned-out delivery waits for one of its endpoint's slots before its own job. */
const FAN_SLOT_WAIT_MS = 1000;

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
 * endpoint that has `perEndpoint` deliveries in flight in this process, or whose breaker is open,
 * is skipped for now (delayed) so it never takes workers from others; then one signed POST. 2xx:
 * delivered. 5xx, 408, 429 (its `Retry-After` honoured), network errors: retried with
 * exponential backoff and jitter up to the horizon, then dead-lettered. Other 4xx, 3xx and
 * refused targets: dead-lettered at once.
 *
 * Redis round trips per delivery sent: one to read the record, its line's head and the breaker's
 * admission, one to save the record and leave the line (plus BullMQ's own).
 */
export function startDeliveryWorker(opts: DeliveryWorkerOptions): Worker<DeliveryJob> {
  const { queue, log } = opts;
  const { DelayedError, UnrecoverableError, Worker } = bullmq();
  const breaker: CircuitBreaker =
    opts.sharedBreaker === false
      ? new LocalBreakers(opts.breaker)
      : new SharedBreakers(queue.redis, queue.prefix, opts.breaker);
  const slots = new EndpointSlots(opts.perEndpoint ?? 4);
  const own = workerConnection(queue.redis);
  const worker = new Worker<DeliveryJob>(
    QUEUE_NAME,
    (job, token) => (job.data.fan ? fanOut(job) : run(bullHandle(job, token))),
    {
      connection: own.connection,
      prefix: queue.bullPrefix,
      concurrency: opts.concurrency ?? 16,
      stalledInterval: 5000,
      lockDuration: 30_000,
      settings: {
        backoffStrategy: (attemptsMade, _type, err) =>
          (err instanceof RetryableError ? err.retryAfterMs : undefined) ??
          backoffDelay(attemptsMade, queue.retry),
      },
    },
  );
  own.endWith(worker);
  worker.on('error', (err) => log.warn({ err: err.message }, 'webhook worker error'));

  /** A delivery of its own BullMQ job: waits are the job's delays, retries its attempts. */
  const bullHandle = (job: Job<DeliveryJob>, token: string | undefined): Handle => ({
    data: job.data,
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    later: async (at) => {
      await job.moveToDelayed(at, token);
      throw new DelayedError();
    },
    updateData: (d) => job.updateData(d),
  });

  /**
   * An event's deliveries queued as one job (each the head of its line, nothing to wait for):
   * sent side by side; one that has to wait or be retried becomes a job of its own, delayed.
   * A run after a crash skips what its history says is over.
   */
  async function fanOut(job: Job<DeliveryJob>): Promise<void> {
    await Promise.all(
      (job.data.fan ?? []).map(async (d) => {
        try {
          await run({
            data: d,
            attemptsMade: 0,
            attempts: job.opts.attempts ?? 1,
            later: (at) => Promise.reject(new Deferred(at)),
            updateData: () => Promise.resolve(),
            fanned: true,
          });
        } catch (err) {
          if (err instanceof UnrecoverableError) return;
          const delay =
            err instanceof Deferred
              ? err.at - Date.now()
              : ((err instanceof RetryableError ? err.retryAfterMs : undefined) ??
                backoffDelay(1, queue.retry));
          await queue.queue.add('delivery', d, { jobId: d.id, delay: Math.max(0, delay) });
        }
      }),
    );
  }

  /** Wakes the delivery now at the head of a line (parked as a delayed job). */
  const wake = async (next: string | undefined) => {
    if (!next) return;
    // Not queued yet (its enqueuer is between the line and the queue): look once more shortly.
    if (!(await queue.wake(next)))
      setTimeout(() => void queue.wake(next).catch(() => undefined), 250).unref();
  };

  async function run(job: Handle): Promise<void> {
    const d = job.data;
    // One round trip: the record, its line's head and the breaker's admission.
    const first = queue.history.read(queue.redis.pipeline(), d.id);
    if (d.ordered) queue.order.head(first, d.webhook, d.ordered.repository);
    const admitted = breaker.admitIn(first, d.webhook);
    const answers = (await first.exec()) ?? [];
    const record = queue.history.parse(answers[0]?.[1]);
    const head = d.ordered ? answers[1]?.[1] : undefined;
    const admission = admitted(answers.at(-1));
    let sent = false;
    try {
      return await attempt(job, record, head, admission, () => (sent = true));
    } finally {
      // Not sent (skipped, waiting, delayed): a probe it was given goes to another attempt.
      if (!sent) await breaker.release(d.webhook, admission);
    }
  }

  async function attempt(
    job: Handle,
    record: DeliveryRecord | undefined,
    head: unknown,
    admission: Admission,
    sending: () => void,
  ): Promise<void> {
    const d = job.data;
    const hook = (await opts.store.all()).find((w) => w.name === d.webhook);
    /**
     * Saves the record's change (when there is a record) and, when `done`, leaves the
     * repository's line and wakes the delivery next in it: one round trip.
     */
    const settle = async (change: RecordChange | undefined, attempt?: Attempt, done = true) => {
      const p = queue.redis.pipeline();
      if (record && change) queue.history.save(p, record, change, attempt);
      const leaving = done && d.ordered;
      if (leaving) queue.order.leave(p, d.webhook, d.ordered!.repository, d.id);
      if (p.length === 0) return;
      const answers = (await p.exec()) ?? [];
      if (leaving) await wake(queue.order.headOf(answers.at(-1)?.[1]));
    };
    if (!record) return settle(undefined); // expired from the history, or the webhook was deleted
    // Run again after a crash (a stalled job): what is over is not sent twice.
    if (record.state === 'delivered' || record.state === 'failed' || record.state === 'skipped')
      return;
    if (!hook || hook.status !== 'enabled')
      return settle({
        state: 'skipped',
        reason: hook ? 'the webhook is disabled' : 'the webhook was deleted',
      });
    if (d.ordered) {
      const leader = queue.order.headOf(head);
      const ahead =
        leader === undefined || leader === d.id
          ? 0
          : await queue.order.ahead(hook.name, d.ordered.repository, d.id, finished);
      // Woken by the delivery ahead when it finishes; the delay is only the backstop.
      if (ahead > 0) await job.later(Date.now() + PARKED_MS);
    }
    let body = record.body;
    if (d.wait) {
      const seen = await visible(d.wait);
      if (!seen.ok) {
        if (Date.now() - d.firstAt > queue.retry.horizonMs) {
          deliveryAttempts.inc({ webhook: hook.name, outcome: 'failed' });
          return settle({ state: 'failed', reason: seen.reason });
        }
        const waits = (d.waits ?? 0) + 1;
        await job.updateData({ ...d, waits });
        await job.later(Date.now() + Math.min(30_000, 250 * 2 ** Math.min(waits, 7)));
      }
      if (d.notification && seen.regions) {
        body = encode({ ...d.notification, regions: seen.regions }, hook.format).body;
        record.body = body;
      }
    }
    if (!admission.send)
      await job.later(Date.now() + admission.retryInMs + Math.floor(Math.random() * 250));
    const slot = job.fanned
      ? await slots.acquire(hook.name, FAN_SLOT_WAIT_MS)
      : slots.tryAcquire(hook.name);
    if (!slot) await job.later(Date.now() + 200 + Math.floor(Math.random() * 300));
    let result: SendResult;
    let sentHeaders: Record<string, string>;
    try {
      sending();
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
      await breaker.success(hook.name, admission);
      deliveryAttempts.inc({ webhook: hook.name, outcome: 'delivered' });
      deliveryLatency.observe(
        { webhook: hook.name },
        (Date.now() - Date.parse(record.createdAt)) / 1000,
      );
      return settle({ state: 'delivered' }, attempt);
    }
    const why = result.error ?? `the receiver answered ${status}`;
    const retryable =
      !result.refused &&
      (status === undefined || status >= 500 || status === 408 || status === 429);
    if (!retryable) {
      // It answered (a 3xx or 4xx is a verdict, not an outage), or the target is refused.
      if (status !== undefined) await breaker.success(hook.name, admission);
      else await breaker.release(hook.name, admission);
      const reason = result.refused
        ? `target refused: ${why}`
        : status !== undefined && status < 400
          ? `the receiver answered ${status}: redirects are not followed`
          : why;
      deliveryAttempts.inc({ webhook: hook.name, outcome: 'failed' });
      await settle({ state: 'failed', reason }, attempt);
      throw new UnrecoverableError(reason);
    }
    if (status === 429) await breaker.release(hook.name, admission);
    else await breaker.failure(hook.name, admission);
    const last = job.attemptsMade + 1 >= job.attempts;
    deliveryAttempts.inc({ webhook: hook.name, outcome: last ? 'failed' : 'retrying' });
    await settle(
      { state: last ? 'failed' : 'retrying', reason: last ? `gave up: ${why}` : why },
      attempt,
      last,
    );
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
