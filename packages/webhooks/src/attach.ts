import type { Logger } from 'pino';
import type { Webhook, WebhookAction } from './definition';
import { actionsOf, notificationOf, type Notification, type WebhookEvent } from './payload';
import { parseScope, scopeMatches, type Scope } from './scope';
import type { Enqueue, RegionWait, WebhookQueue } from './webhook-queue';
import type { WebhookStore } from './webhook-store';

/** The part of `@meridian/registry`'s `RegistryEvents` webhooks plug into (structural). */
export interface WebhookEventSource {
  /** Durable: at least once, in commit order, across restarts. */
  attach(sub: {
    name: string;
    deliver: (e: WebhookEvent) => Promise<void>;
    timeoutMs?: number;
  }): Promise<() => Promise<void>>;
}

export interface WebhooksDeps {
  queue: WebhookQueue;
  store: WebhookStore;
  /** The registry's public host, in `request.host` of every payload. */
  host: string;
  /** This node's region (the primary): a webhook located here fires at the commit. */
  region: string;
  log: Logger;
}

/**
 * On a primary: every committed change that fires an action (`manifestPut` → `push` and
 * `replicated`, `manifestDeleted` → `delete`, `tagDeleted` → `tag_delete`, `lockChanged` →
 * `lock_changed`) becomes one queued
 * delivery per enabled webhook whose actions and scope match — as the durable subscriber
 * `webhooks`, so a push is answered before any webhook is looked at and an event survives a
 * crash (the dispatcher replays it; the delivery id de-duplicates the replay).
 */
export async function attachWebhooks(
  registry: { events: WebhookEventSource },
  deps: WebhooksDeps,
): Promise<() => Promise<void>> {
  const scopes = new Map<string, Scope>();
  const scopeOf = (hook: Webhook): Scope | undefined => {
    let s = scopes.get(hook.scope);
    if (!s) {
      try {
        s = parseScope(hook.scope);
      } catch {
        return undefined; // validated on write; a hand-edited object is skipped
      }
      scopes.set(hook.scope, s);
    }
    return s;
  };
  return registry.events.attach({
    name: 'webhooks',
    timeoutMs: 10_000,
    deliver: async (e) => {
      const actions = actionsOf(e);
      if (actions.length === 0) return;
      const batch: Enqueue[] = [];
      // One notification per action, shared by every webhook that gets it.
      const notifications = new Map<WebhookAction, Notification>();
      const notification = (action: WebhookAction) => {
        let n = notifications.get(action);
        if (!n) notifications.set(action, (n = notificationOf(e, action, deps.host)));
        return n;
      };
      for (const hook of await deps.store.all()) {
        if (hook.status !== 'enabled') continue;
        const scope = scopeOf(hook);
        if (!scope || !scopeMatches(scope, e.repository, e.tag)) continue;
        for (const action of actions) {
          if (!hook.actions.includes(action)) continue;
          batch.push({
            hook,
            n: notification(action),
            wait: regionWait(hook, action, e, deps.region),
            // `replicated` waits for every region: it is not held in line with the others.
            sequence: action === 'replicated' ? undefined : e.sequence,
          });
        }
      }
      if (batch.length > 0) await deps.queue.enqueueAll(batch);
    },
  });
}

/** What a delivery waits for: every region (`replicated`), or the webhook's region. */
export function regionWait(
  hook: Webhook,
  action: WebhookAction,
  e: WebhookEvent,
  ownRegion: string,
): RegionWait | undefined {
  const reference = e.tag ?? e.digest;
  // A lock applies in every region from the primary's record: it fires at the commit.
  if (reference === undefined || e.type === 'lockChanged') return undefined;
  const until = e.type === 'manifestPut' || e.type === 'importFinished' ? 'present' : 'absent';
  if (action === 'replicated') {
    const named = hook.regions ?? [];
    return { regions: named.length ? named : 'all', repository: e.repository, reference, until };
  }
  if (hook.location === 'global' || hook.location === ownRegion) return undefined;
  return { regions: [hook.location], repository: e.repository, reference, until };
}
