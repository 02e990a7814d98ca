import { OciError } from '@meridian/oci';
import {
  applyInput,
  createWebhook,
  invalid,
  masked,
  validName,
  type Webhook,
  type WebhookInput,
} from './definition';
import type { DeliveryRecord } from './history';
import { encode, pingNotification } from './payload';
import { attemptOf, postDelivery } from './post';
import type { TargetGuard } from './target-guard';
import { deliveryId, type WebhookQueue } from './webhook-queue';
import type { WebhookStore } from './webhook-store';

export interface WebhookServiceOptions {
  store: WebhookStore;
  /** Absent on a node without Redis: definitions can be managed, nothing is delivered. */
  queue?: WebhookQueue;
  guard: TargetGuard;
  /** The cluster's regions (valid `location`s besides `global`). */
  regions: readonly string[];
  /** This node's region (in ping payloads). */
  region: string;
  /** The registry's public host (in payloads). */
  host: string;
  timeoutMs?: number;
}

const notFound = (name: string) =>
  new OciError('NAME_UNKNOWN', `webhook ${name} does not exist`, undefined, 404);

/**
 * The admin API's webhook operations (`/meridian/v1/admin/webhooks`). Reads mask the URL's path
 * and query, header values and secrets; `config` shows the URL and headers (ACR's get-config);
 * a secret is shown when it is generated (create, rotate) and never again.
 */
export class WebhookService {
  constructor(private readonly opts: WebhookServiceOptions) {}

  async list(): Promise<{ webhooks: Record<string, unknown>[] }> {
    return { webhooks: (await this.opts.store.all()).map(masked) };
  }

  async show(name: string): Promise<Record<string, unknown>> {
    return masked(await this.get(name));
  }

  async config(name: string): Promise<{ url: string; headers: Record<string, string> }> {
    const w = await this.get(name);
    return { url: w.url, headers: w.headers };
  }

  async create(input: WebhookInput): Promise<Record<string, unknown>> {
    const w = createWebhook(input, this.opts.regions);
    this.checkTarget(w.url);
    if (await this.opts.store.get(w.name))
      throw new OciError('DENIED', `webhook ${w.name} exists`, undefined, 409);
    await this.opts.store.put(w);
    return { ...masked(w), secret: w.secrets[0]!.value };
  }

  async update(name: string, input: WebhookInput): Promise<Record<string, unknown>> {
    const before = await this.get(name);
    if (input.name !== undefined && input.name !== name)
      throw invalid('a webhook cannot be renamed');
    const w = applyInput(before, input, this.opts.regions);
    if (input.url !== undefined) this.checkTarget(w.url);
    await this.opts.store.put(w);
    const fresh = w.secrets[0]!.value !== before.secrets[0]!.value;
    return {
      ...masked(w),
      ...(fresh && input.secret === undefined && { secret: w.secrets[0]!.value }),
    };
  }

  async delete(name: string): Promise<void> {
    await this.get(name);
    await this.opts.store.delete(name);
    await this.opts.queue?.history.forget(name);
  }

  /**
   * Sends a `ping` notification now (one attempt, not retried) and answers with what the
   * receiver said; the attempt is in the history like any delivery.
   */
  async ping(name: string): Promise<Record<string, unknown>> {
    const w = await this.get(name);
    const n = pingNotification(this.opts.host, this.opts.region);
    const id = deliveryId(w.name, n.id);
    const { body, type } = encode(n, w.format);
    const { result, sentHeaders } = await postDelivery(w, id, type, body, this.opts);
    const ok = result.status !== undefined && result.status >= 200 && result.status < 300;
    const history = this.opts.queue?.history;
    if (history) {
      const now = new Date().toISOString();
      const record: DeliveryRecord = {
        id,
        webhook: w.name,
        action: 'ping',
        repository: '',
        createdAt: now,
        updatedAt: now,
        state: ok ? 'delivered' : 'failed',
        ...(!ok && { reason: result.error ?? `the receiver answered ${result.status}` }),
        contentType: type,
        body,
        attempts: [attemptOf(result, sentHeaders, w)],
      };
      await history.create(record);
    }
    return {
      id,
      delivered: ok,
      ...(result.status !== undefined && { status: result.status }),
      ...(result.error !== undefined && { error: result.error }),
      durationMs: result.durationMs,
    };
  }

  /** Recent deliveries of a webhook, newest first (request and response excerpts). */
  async listEvents(name: string, limit = 50): Promise<{ events: DeliveryRecord[] }> {
    await this.get(name);
    const history = this.requireQueue().history;
    return { events: await history.list(name, Math.min(1000, Math.max(1, limit))) };
  }

  /** Queues a delivery again (same id and body, a fresh set of retries). */
  async redeliver(name: string, id: string): Promise<{ id: string; state: string }> {
    await this.get(name);
    const queue = this.requireQueue();
    const record = await queue.history.get(id);
    if (!record || record.webhook !== name)
      throw new OciError('NAME_UNKNOWN', `no delivery ${id} of webhook ${name}`, undefined, 404);
    await queue.redeliver(record);
    return { id, state: 'pending' };
  }

  private async get(name: string): Promise<Webhook> {
    const w = await this.opts.store.get(validName(name)).catch((err: unknown) => {
      if (err instanceof OciError) throw notFound(name);
      throw err;
    });
    if (!w) throw notFound(name);
    return w;
  }

  private requireQueue(): WebhookQueue {
    if (!this.opts.queue)
      throw new OciError('UNSUPPORTED', 'webhook delivery needs Redis (config key "redis")');
    return this.opts.queue;
  }

  private checkTarget(url: string): void {
    try {
      this.opts.guard.checkLiteral(new URL(url));
    } catch (err) {
      throw invalid(
        `url: ${(err as Error).message}; an operator can allow it (webhooks.allowPrivateTargets)`,
      );
    }
  }
}
