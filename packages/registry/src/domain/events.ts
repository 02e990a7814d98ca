import { AsyncLocalStorage } from 'node:async_hooks';
import { join } from 'node:path';
import { EventDispatcher, type DurableSubscriber } from './event-dispatcher';
import { EventJournal } from './event-journal';

/**
 * Domain events: every committed change on a node. Replication, audit, metrics and (next)
 * webhooks subscribe; handlers never enqueue work themselves. See ADR 0010.
 */
export type RegistryChange =
  | { type: 'blobCommitted'; repository: string; digest: string; size: number; at: number }
  /** `from` is '' for an automatic mount (no source repository named). */
  | { type: 'blobMounted'; repository: string; digest: string; from: string; at: number }
  | {
      type: 'manifestPut';
      repository: string;
      digest: string;
      mediaType: string;
      /** The manifest's length in bytes. */
      size?: number;
      /** The tag it was pushed by (a `tagMoved` follows); absent for a push by digest. */
      tag?: string;
      subject?: string;
      at: number;
    }
  /** Emitted after the `manifestPut` of a manifest with a `subject`. */
  | { type: 'referrerAdded'; repository: string; digest: string; subject: string; at: number }
  /**
   * `seq` is the tag record's sequence (freshness on replicas), not the event's; `previous` the
   * digest the tag pointed at before, when it moved (untagged retention schedules it).
   */
  | {
      type: 'tagMoved';
      repository: string;
      tag: string;
      digest: string;
      seq: number;
      previous?: string;
      at: number;
    }
  /** `softDeleted`: the manifest went to the recycle bin (ADR 0017), restorable until `expiresAt`. */
  | {
      type: 'manifestDeleted';
      repository: string;
      digest: string;
      softDeleted?: boolean;
      expiresAt?: string;
      at: number;
    }
  /** A soft-deleted manifest back from the recycle bin (after its tombstone is gone). */
  | { type: 'manifestRestored'; repository: string; digest: string; at: number }
  /** `digest`: what the tag pointed at (untagged retention schedules it). */
  | { type: 'tagDeleted'; repository: string; tag: string; digest?: string; at: number }
  | { type: 'blobDeleted'; repository: string; digest: string; at: number }
  /** An import (ADR 0019) wrote this image into the repository; `source` is where it came from. */
  | {
      type: 'importFinished';
      repository: string;
      digest: string;
      mediaType: string;
      tag?: string;
      source: string;
      at: number;
    }
  /**
   * A retention run (a scheduled rule, untagged retention, or `meridian retention run`) removed
   * these from the repository (ADR 0021); one event per repository it changed.
   */
  | {
      type: 'retentionFinished';
      repository: string;
      rule: string;
      tags: string[];
      manifests: string[];
      bytes: number;
      at: number;
    }
  /**
   * A lock record was written (ADR 0015): `tag` or `digest` name its target (neither: the
   * repository); `seq` is the record's sequence, so a replica never applies an older one.
   */
  | {
      type: 'lockChanged';
      repository: string;
      tag?: string;
      digest?: string;
      deleteEnabled: boolean;
      writeEnabled: boolean;
      readEnabled: boolean;
      listEnabled: boolean;
      writeOnce?: string[];
      seq: number;
      at: number;
    };

/** Who made a change. `anonymous` when auth is off or the caller has no credentials. */
export interface Actor {
  /** A principal kind (`user`, `service`, `token`, `admin-user`, `node`), or `anonymous`/`system`. */
  kind: string;
  name: string;
  /** The access token's name when the caller authenticated with one. */
  token?: string;
  /** The client's address (after trusted proxies). */
  address?: string;
  userAgent?: string;
}

/** What the HTTP layer knows about the request a domain call serves. */
export interface RequestInfo {
  actor: Actor;
  requestId: string;
}

/** A change as it is journaled and delivered. */
export type RegistryEvent = RegistryChange & {
  /** Per node, strictly increasing in commit order. */
  sequence: number;
  region: string;
  /** ISO 8601 commit time. */
  time: string;
  actor: Actor;
  requestId?: string;
};

export type RegistryListener = (event: RegistryEvent) => void | Promise<void>;

export const SYSTEM_ACTOR: Actor = { kind: 'system', name: 'meridian' };

export interface RegistryEventsOptions {
  region?: string;
  journal?: EventJournal<RegistryEvent>;
  /** Where durable subscribers keep their acknowledged offsets (in memory when absent). */
  offsetsDir?: string;
  /** First retry delay for a failed delivery (doubles, up to 10 s). Default 100 ms. */
  backoffMs?: number;
  onError?: (
    err: unknown,
    event: RegistryEvent | { sequence: number },
    subscriber?: string,
  ) => void;
}

/**
 * The event bus. `emit` journals the change (fsynced, group commit) and returns; durable
 * subscribers (`attach`) get it later from the dispatcher, at least once and in order, so a
 * reply never waits on Redis or a subscriber. `subscribe` listeners are called synchronously
 * at emit and never awaited: for in-process caches and fire-and-forget fast paths only.
 */
export class RegistryEvents {
  readonly journal: EventJournal<RegistryEvent>;
  readonly dispatcher: EventDispatcher<RegistryEvent>;
  private readonly listeners: RegistryListener[] = [];
  private readonly request = new AsyncLocalStorage<RequestInfo>();
  private readonly region: string;

  constructor(private readonly opts: RegistryEventsOptions = {}) {
    this.region = opts.region ?? 'local';
    this.journal = opts.journal ?? EventJournal.memory<RegistryEvent>();
    this.dispatcher = new EventDispatcher(this.journal, {
      offsetsDir: opts.offsetsDir,
      backoffMs: opts.backoffMs,
      // Commit order is kept per repository; repositories are delivered side by side.
      partition: (e) => e.repository,
      onError: (err, subscriber, event) => opts.onError?.(err, event, subscriber),
    });
  }

  /** A bus with a journal and offsets under `dir` (`<dir>/journal`, `<dir>/offsets`). */
  static async open(
    dir: string,
    opts: Omit<RegistryEventsOptions, 'journal' | 'offsetsDir'> = {},
  ): Promise<RegistryEvents> {
    const journal = await EventJournal.open<RegistryEvent>({ dir: join(dir, 'journal') });
    return new RegistryEvents({ ...opts, journal, offsetsDir: join(dir, 'offsets') });
  }

  /** Runs one domain call on behalf of a request: its events carry the actor and request id. */
  withRequest<R>(info: RequestInfo, fn: () => R): R {
    return this.request.run(info, fn);
  }

  /** An in-process listener, called synchronously at emit (never awaited). */
  subscribe(listener: RegistryListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /**
   * A durable subscriber: every event at least once, in commit order per repository (see
   * `DurableSubscriber.order`), across restarts.
   */
  attach(sub: DurableSubscriber<RegistryEvent>): Promise<() => Promise<void>> {
    return this.dispatcher.attach(sub);
  }

  /** Journals the change; resolves once it is durable (before the client's reply). */
  async emit(change: RegistryChange): Promise<void> {
    const changes: RegistryChange[] = [change];
    if (change.type === 'manifestPut' && change.subject)
      changes.push({
        type: 'referrerAdded',
        repository: change.repository,
        digest: change.digest,
        subject: change.subject,
        at: change.at,
      });
    const info = this.request.getStore();
    const durable: Promise<void>[] = [];
    for (const c of changes) {
      const { entry, durable: d } = this.journal.append((sequence) => ({
        ...c,
        sequence,
        region: this.region,
        time: new Date(c.at).toISOString(),
        actor: info?.actor ?? SYSTEM_ACTOR,
        ...(info ? { requestId: info.requestId } : {}),
      }));
      durable.push(d);
      for (const l of this.listeners) {
        try {
          const p = l(entry);
          if (p instanceof Promise) p.catch((err: unknown) => this.opts.onError?.(err, entry));
        } catch (err) {
          this.opts.onError?.(err, entry);
        }
      }
    }
    await Promise.all(durable);
  }

  /** Stops delivery and closes the journal (pending appends are flushed first). */
  async close(): Promise<void> {
    await this.dispatcher.close();
    await this.journal.close();
  }
}
