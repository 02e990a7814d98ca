import { parseDigest } from '@meridian/oci';
import { isNotFound, listAllKeys, readJson, type ObjectStore } from '@meridian/storage';

/** ACR's untagged-manifest retention policy (`days` 0–365), as the primary keeps it. */
export interface UntaggedPolicy {
  enabled: boolean;
  days: number;
  /** When the policy was last turned on: only manifests untagged since then are scheduled. */
  enabledAt?: string;
}

/** A manifest a tag left: it becomes due `days` after `untaggedAt`, and is re-checked then. */
export interface UntaggedRecord {
  repository: string;
  digest: string;
  untaggedAt: string;
}

const ROOT = '_retention/untagged/';
const POLICY = '_retention/policy/untagged.json';
const recordKey = (repository: string, digest: string): string => {
  const d = parseDigest(digest);
  return `${ROOT}${repository}/_due/${d.algorithm}-${d.hex}`;
};

/** A domain event as untagged retention reads it (structural: no import of the registry). */
export interface UntaggingEvent {
  type: string;
  repository: string;
  /** ISO 8601 commit time. */
  time: string;
  /** `tagMoved`: the digest the tag left. */
  previous?: string;
  /** `tagDeleted`: the digest the tag pointed at. */
  digest?: string;
}

/**
 * Untagged-manifest retention (ADR 0021), with ACR's semantics: untagging a manifest (a tag moved
 * off it or deleted) schedules a dated delete `days` later, re-checked when due; only untaggings
 * after the policy was enabled count. The schedule lives in the primary region's store
 * (`_retention/`), not in Redis, so a Redis loss forgets nothing.
 */
export class UntaggedRetention {
  private current: UntaggedPolicy | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** The stored policy (off when none was ever set). */
  async policy(): Promise<UntaggedPolicy> {
    this.current ??= (await readJson<UntaggedPolicy>(this.store, POLICY)) ?? {
      enabled: false,
      days: 7,
    };
    return this.current;
  }

  /**
   * Sets the policy (from the node's config at start, on the primary). Turning it on records
   * the moment, so manifests untagged before it are never scheduled; it keeps its moment while
   * it stays on.
   */
  async setPolicy(p: { enabled: boolean; days: number }): Promise<UntaggedPolicy> {
    if (!Number.isInteger(p.days) || p.days < 0 || p.days > 365)
      throw new Error('retention.untagged.days: a whole number of days, 0 to 365');
    const old = await this.policy();
    const next: UntaggedPolicy = {
      enabled: p.enabled,
      days: p.days,
      ...(p.enabled && {
        enabledAt:
          old.enabled && old.enabledAt ? old.enabledAt : new Date(this.now()).toISOString(),
      }),
    };
    if (JSON.stringify(next) !== JSON.stringify(old))
      await this.store.put(POLICY, Buffer.from(JSON.stringify(next)));
    this.current = next;
    return next;
  }

  /** Schedules `digest` when a tag left it at `at` (ms) under an enabled policy. */
  async noteUntagged(repository: string, digest: string, at: number): Promise<boolean> {
    const p = await this.policy();
    if (!p.enabled || !p.enabledAt || at < Date.parse(p.enabledAt)) return false;
    const key = recordKey(repository, digest);
    const old = await readJson<UntaggedRecord>(this.store, key);
    // Redelivered events are harmless: the latest untagging counts.
    if (old && Date.parse(old.untaggedAt) >= at) return true;
    const rec: UntaggedRecord = { repository, digest, untaggedAt: new Date(at).toISOString() };
    await this.store.put(key, Buffer.from(JSON.stringify(rec)));
    return true;
  }

  /** Every scheduled record with its due time under the current policy. */
  async scheduled(): Promise<(UntaggedRecord & { dueAt: string })[]> {
    const p = await this.policy();
    const out: (UntaggedRecord & { dueAt: string })[] = [];
    for (const key of await listAllKeys(this.store, ROOT)) {
      const rec = await readJson<UntaggedRecord>(this.store, key).catch(() => undefined);
      if (!rec) continue;
      out.push({
        ...rec,
        dueAt: new Date(Date.parse(rec.untaggedAt) + p.days * 86_400_000).toISOString(),
      });
    }
    return out;
  }

  /** The records due at `now`, by repository (none while the policy is off). */
  async due(now = this.now()): Promise<Map<string, Set<string>>> {
    const by = new Map<string, Set<string>>();
    if (!(await this.policy()).enabled) return by;
    for (const r of await this.scheduled())
      if (Date.parse(r.dueAt) <= now)
        by.set(r.repository, (by.get(r.repository) ?? new Set()).add(r.digest));
    return by;
  }

  /** Drops a record (its manifest went, or is tagged again). */
  async forget(repository: string, digest: string): Promise<void> {
    await this.store.delete(recordKey(repository, digest)).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }
}

/** The part of `@meridian/registry`'s `RegistryEvents` retention plugs into. */
export interface RetentionEventSource {
  attach(sub: {
    name: string;
    deliver: (e: UntaggingEvent) => Promise<void>;
  }): Promise<() => Promise<void>>;
}

/**
 * On the primary: a durable subscriber (`retention`) that schedules each manifest a tag left, so
 * a crash between the untagging and the record loses nothing.
 */
export function attachUntaggedRetention(
  events: RetentionEventSource,
  retention: UntaggedRetention,
): Promise<() => Promise<void>> {
  return events.attach({
    name: 'retention',
    deliver: async (e) => {
      const left =
        e.type === 'tagMoved' ? e.previous : e.type === 'tagDeleted' ? e.digest : undefined;
      if (left) await retention.noteUntagged(e.repository, left, Date.parse(e.time));
    },
  });
}
