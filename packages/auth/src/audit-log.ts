import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { listAllKeys, type ObjectStore } from '@meridian/storage';
import { AuthLayout } from './auth-layout';
import type { PrincipalKind } from './model';

/** One audited event: who did what, when, from where, and how it ended. Never a secret. */
export interface AuditEvent {
  at: string;
  region: string;
  actor: string;
  /** `system` for a change the node made itself (a content change not made by a request). */
  actorKind: PrincipalKind | 'system' | 'unknown';
  /**
   * `login`, `token.refresh`, `user.create`, `role.assign`, `token.disable`, ...; for content
   * changes (from the domain events, `attachContentAudit`): `blob.push`, `manifest.push`,
   * `tag.move`, `tag.delete`, `manifest.delete`, ...
   */
  action: string;
  target?: string;
  outcome: 'success' | 'failure' | 'throttled';
  reason?: string;
  /** Client address. */
  address?: string;
  /** For logins: `basic`, `token-get`, `password`, `refresh_token`. */
  method?: string;
  detail?: Record<string, unknown>;
}

export interface AuditQuery {
  since?: Date;
  until?: Date;
  actor?: string;
  action?: string;
  outcome?: string;
  /** Newest first; default 100, at most 1000. */
  limit?: number;
}

export interface AuditLogOptions {
  /** This node's region store, where its events are written. */
  store: ObjectStore;
  region: string;
  /** Every region's store this node can read, for queries. Default: only its own. */
  readStores?: { region: string; store: ObjectStore }[];
  /** Events are written in batches this often, ms. Default 1000. */
  flushIntervalMs?: number;
  log: Logger;
}

const MAX_QUERY_DAYS = 62;

/**
 * The audit log: events are buffered briefly and written as one object per batch under
 * `_audit/<region>/<day>/` in the region's own store (durable, never replicated); a query reads
 * every region's store this node can reach. Each event is also logged.
 */
export class AuditLog {
  private buffer: AuditEvent[] = [];
  private readonly nodeId = randomBytes(4).toString('hex');
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: AuditLogOptions) {
    const every = opts.flushIntervalMs ?? 1000;
    this.timer = setInterval(() => void this.flush(), every);
    this.timer.unref();
  }

  record(e: Omit<AuditEvent, 'at' | 'region'>): void {
    const event: AuditEvent = { at: new Date().toISOString(), region: this.opts.region, ...e };
    this.buffer.push(event);
    this.opts.log.info({ audit: event }, 'audit');
  }

  /**
   * Writes `events` (each with its own time, e.g. a change's commit time) now, one object per
   * day they fall on; rejects when the store refuses them, keeping nothing. For a caller that
   * must know its events are durable before it moves on (the content-change subscriber).
   */
  async append(events: Omit<AuditEvent, 'region'>[]): Promise<void> {
    if (events.length === 0) return;
    const batch = events.map((e): AuditEvent => ({ ...e, region: this.opts.region }));
    await this.writeBatch(batch);
    for (const event of batch) this.opts.log.info({ audit: event }, 'audit');
  }

  /** Writes buffered events now. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    try {
      await this.writeBatch(batch);
    } catch (err) {
      // Keep the events for the next attempt rather than lose them.
      this.buffer = [...batch, ...this.buffer];
      this.opts.log.warn({ err: (err as Error).message }, 'audit: writing events failed');
    }
  }

  /** One object per day the events fall on, so a query by day finds every one of them. */
  private async writeBatch(batch: AuditEvent[]): Promise<void> {
    const byDay = new Map<string, AuditEvent[]>();
    for (const e of batch) {
      const day = e.at.slice(0, 10);
      const list = byDay.get(day);
      if (list) list.push(e);
      else byDay.set(day, [e]);
    }
    for (const [day, events] of byDay) {
      const time = events[0]!.at.slice(11, 23).replace(/[:.]/g, '');
      const key = `${AuthLayout.auditDay(this.opts.region, day)}${time}-${this.nodeId}-${String(this.seq++).padStart(6, '0')}`;
      await this.opts.store.put(key, Buffer.from(events.map((e) => JSON.stringify(e)).join('\n')));
    }
  }

  async query(q: AuditQuery = {}): Promise<AuditEvent[]> {
    await this.flush();
    const until = q.until ?? new Date();
    const since = q.since ?? new Date(until.getTime() - 7 * 86_400_000);
    const limit = Math.min(Math.max(Number.isFinite(q.limit) ? q.limit! : 100, 1), 1000);
    const days: string[] = [];
    for (
      let t = Date.parse(since.toISOString().slice(0, 10));
      t <= until.getTime();
      t += 86_400_000
    ) {
      days.push(new Date(t).toISOString().slice(0, 10));
      if (days.length >= MAX_QUERY_DAYS) break;
    }
    const stores = this.opts.readStores ?? [{ region: this.opts.region, store: this.opts.store }];
    const events: AuditEvent[] = [];
    await Promise.all(
      stores.map(async ({ region, store }) => {
        try {
          for (const day of days) {
            for (const key of await listAllKeys(store, AuthLayout.auditDay(region, day))) {
              const text = (await store.getBytes(key)).toString('utf8');
              for (const line of text.split('\n')) {
                if (!line) continue;
                try {
                  events.push(JSON.parse(line) as AuditEvent);
                } catch {
                  // a torn line cannot happen (writes are atomic); skip anything else odd
                }
              }
            }
          }
        } catch (err) {
          this.opts.log.warn({ region, err: (err as Error).message }, 'audit: region unreadable');
        }
      }),
    );
    const lo = since.toISOString();
    const hi = until.toISOString();
    return events
      .filter(
        (e) =>
          e.at >= lo &&
          e.at <= hi &&
          (!q.actor || e.actor === q.actor) &&
          (!q.action || e.action === q.action || e.action.startsWith(`${q.action}.`)) &&
          (!q.outcome || e.outcome === q.outcome),
      )
      .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
      .slice(0, limit);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
