import { listAllKeys, readJson, type ObjectStore } from '@meridian/storage';
import type { Webhook } from './definition';

/** Where webhook definitions live in the primary region's object store (never replicated). */
export const WEBHOOKS_ROOT = '_webhooks/';

export interface WebhookStoreOptions {
  /**
   * How long `all()` trusts what it read (ms); writes through this store refresh it at once,
   * other nodes' writes are seen within this time. Default 2000.
   */
  ttlMs?: number;
}

/**
 * Webhook definitions, one JSON object each under `_webhooks/<name>` in the primary region's
 * object store — the source of truth, like every other piece of registry state (ADR 0013).
 * The event subscriber reads `all()` per event, so it is cached for `ttlMs`.
 */
export class WebhookStore {
  private cached: { at: number; hooks: Promise<Webhook[]> } | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: WebhookStoreOptions = {},
  ) {}

  async get(name: string): Promise<Webhook | undefined> {
    return readJson<Webhook>(this.store, WEBHOOKS_ROOT + name);
  }

  async put(w: Webhook): Promise<void> {
    await this.store.put(WEBHOOKS_ROOT + w.name, Buffer.from(JSON.stringify(w)), {
      contentType: 'application/json',
    });
    this.cached = undefined;
  }

  async delete(name: string): Promise<void> {
    await this.store.delete(WEBHOOKS_ROOT + name);
    this.cached = undefined;
  }

  /** Every webhook, sorted by name (cached for `ttlMs`). */
  all(): Promise<Webhook[]> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < (this.opts.ttlMs ?? 2000)) return this.cached.hooks;
    const hooks = this.load();
    this.cached = { at: now, hooks };
    hooks.catch(() => {
      if (this.cached?.hooks === hooks) this.cached = undefined;
    });
    return hooks;
  }

  private async load(): Promise<Webhook[]> {
    const keys = await listAllKeys(this.store, WEBHOOKS_ROOT);
    const hooks = await Promise.all(keys.map((k) => readJson<Webhook>(this.store, k)));
    return hooks.filter((w): w is Webhook => w !== undefined).sort(byName);
  }
}

const byName = (a: Webhook, b: Webhook): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
