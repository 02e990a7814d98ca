import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { OciError } from '@meridian/oci';
import { isNotFound, listAllKeys, readJson, type ObjectStore } from '@meridian/storage';
import { AuthLayout } from './auth-layout';
import { authSourceReachable } from './metrics';
import {
  BUILT_IN_SCOPE_MAPS,
  DEFAULT_SETTINGS,
  type AdminUserRecord,
  type IdentityRecord,
  type PublicKeyRecord,
  type RegistrySettings,
  type ScopeMapRecord,
  type TokenRecord,
} from './model';

/** Everything a node needs to authenticate and authorize, held in memory. */
export interface AuthSnapshot {
  /** The `_auth/rev` it was loaded at ('' for a store never written). */
  rev: string;
  /** Whether the first start's bootstrap (the owner identity) has run. */
  initialized: boolean;
  settings: RegistrySettings;
  adminUser?: AdminUserRecord;
  identities: Map<string, IdentityRecord>;
  tokens: Map<string, TokenRecord>;
  /** Scope maps, the built-in ones included. */
  scopeMaps: Map<string, ScopeMapRecord>;
  keys: Map<string, PublicKeyRecord>;
}

export interface CredentialStoreOptions {
  /** The primary region's store: the source of truth for `_auth/`. */
  source: ObjectStore;
  /** This node's region's store (the same object on the primary), mirrored from the source. */
  local: ObjectStore;
  /** How often the source's revision is checked, ms. Default 2000. */
  pollIntervalMs?: number;
  log: Logger;
}

/** Reload everything at least this often even when the revision did not move. */
const FULL_RELOAD_MS = 60_000;

/**
 * The credential records of the registry, read from the primary region's store and mirrored
 * (write-through) into this node's region store, so a replica keeps authenticating while the
 * primary is unreachable (see docs/adr/0004-auth.md). Reads are served from an in-memory
 * snapshot; a change made at any node reaches every node within the poll interval.
 */
export class CredentialStore {
  snapshot: AuthSnapshot = emptySnapshot('');
  /** Whether the last read of the source succeeded. */
  sourceReachable = false;
  private loaded = false;
  private lastFullLoad = 0;
  private loading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writes: Promise<unknown> = Promise.resolve();
  private readonly pollMs: number;
  private closed = false;

  constructor(private readonly opts: CredentialStoreOptions) {
    this.pollMs = opts.pollIntervalMs ?? 2000;
  }

  get mirrored(): boolean {
    return this.opts.source !== this.opts.local;
  }

  async start(): Promise<void> {
    await this.refresh(true);
    this.schedule();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.refresh(false).finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  /** Reloads from the source when its revision moved (or `force`); falls back to the mirror. */
  refresh(force = false): Promise<void> {
    // A forced reload must read after whatever write preceded it: wait for a load in flight.
    if (this.loading) return force ? this.loading.then(() => this.refresh(true)) : this.loading;
    this.loading = this.load(force).finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(force: boolean): Promise<void> {
    const { source, local, log } = this.opts;
    try {
      const rev = await readRev(source);
      // A source with no revision while this region holds credentials is more likely a wrong
      // or emptied location than a registry that never had any: never mirror that emptiness.
      if (
        rev === '' &&
        this.mirrored &&
        ((await readRev(local)) !== '' || this.snapshot.rev !== '')
      )
        throw new Error('the primary region’s store holds no credentials');
      const wasReachable = this.sourceReachable;
      this.setReachable(true);
      if (!wasReachable && this.loaded) log.info('auth: primary credential store reachable again');
      const fresh = Date.now() - this.lastFullLoad < FULL_RELOAD_MS;
      if (!force && this.loaded && rev === this.snapshot.rev && fresh) return;
      const records = await readAll(source);
      this.snapshot = parseSnapshot(records, log);
      this.loaded = true;
      this.lastFullLoad = Date.now();
      if (this.mirrored) await this.mirror(records);
    } catch (err) {
      if (this.sourceReachable || !this.loaded)
        log.warn(
          { err: (err as Error).message },
          'auth: primary credential store unreachable; using this region’s copy',
        );
      this.setReachable(false);
      if (!this.loaded && this.mirrored) {
        try {
          this.snapshot = parseSnapshot(await readAll(local), log);
          this.loaded = true;
        } catch (e) {
          log.error({ err: (e as Error).message }, 'auth: cannot read this region’s credentials');
        }
      }
    }
  }

  private setReachable(v: boolean): void {
    this.sourceReachable = v;
    authSourceReachable.set(v ? 1 : 0);
  }

  /** Makes this region's `_auth/` equal to the source's; the revision is written last. */
  private async mirror(records: Map<string, Buffer>): Promise<void> {
    const { local, log } = this.opts;
    try {
      const existing = new Set(await listAllKeys(local, AuthLayout.root));
      for (const [key, bytes] of records) {
        if (key === AuthLayout.rev) continue;
        if (existing.has(key) && (await local.getBytes(key)).equals(bytes)) continue;
        await local.put(key, bytes);
      }
      for (const key of existing) if (!records.has(key)) await local.delete(key);
      const rev = records.get(AuthLayout.rev);
      if (rev) await local.put(AuthLayout.rev, rev);
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        'auth: mirroring credentials into this region failed',
      );
    }
  }

  /**
   * Changes one record at the source: `fn` gets the current value (read fresh) and returns the
   * new one, or undefined to delete it. Writes from this process are serialised; the revision
   * moves so every node reloads.
   */
  mutate<T>(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    const run = async (): Promise<T | undefined> => {
      const { source } = this.opts;
      const unavailable = () =>
        new OciError(
          'UNAVAILABLE',
          'credential changes are made in the primary region, whose store is unreachable',
        );
      const io = async <R>(op: () => Promise<R>): Promise<R> => {
        try {
          return await op();
        } catch {
          throw unavailable();
        }
      };
      // A source that lost its revision is not one to write to (see load()).
      if ((await io(() => readRev(source))) === '' && this.snapshot.rev !== '') throw unavailable();
      const current = await io(() => readJson<T>(source, key));
      const next = fn(current);
      await io(async () => {
        if (next === undefined) await source.delete(key);
        else await source.put(key, Buffer.from(JSON.stringify(next)));
        await source.put(
          AuthLayout.rev,
          Buffer.from(JSON.stringify({ rev: randomUUID(), at: new Date().toISOString() })),
        );
      });
      await this.refresh(true);
      return next;
    };
    const p = this.writes.then(run, run);
    this.writes = p.catch(() => {});
    return p;
  }
}

function emptySnapshot(rev: string): AuthSnapshot {
  return {
    rev,
    initialized: false,
    settings: { ...DEFAULT_SETTINGS },
    identities: new Map(),
    tokens: new Map(),
    scopeMaps: new Map(BUILT_IN_SCOPE_MAPS.map((m) => [m.name, m])),
    keys: new Map(),
  };
}

function parseSnapshot(records: Map<string, Buffer>, log: Logger): AuthSnapshot {
  const revBytes = records.get(AuthLayout.rev);
  const s = emptySnapshot(revBytes ? revBytes.toString('utf8') : '');
  for (const [key, bytes] of records) {
    let v: unknown;
    try {
      v = JSON.parse(bytes.toString('utf8'));
    } catch {
      log.warn({ key }, 'auth: skipping a malformed credential record');
      continue;
    }
    const name = key.slice(key.lastIndexOf('/') + 1);
    if (key === AuthLayout.initialized) s.initialized = true;
    else if (key === AuthLayout.settings)
      s.settings = { ...DEFAULT_SETTINGS, ...(v as Partial<RegistrySettings>) };
    else if (key === AuthLayout.adminUser) s.adminUser = v as AdminUserRecord;
    else if (key.startsWith(AuthLayout.identitiesRoot)) s.identities.set(name, v as IdentityRecord);
    else if (key.startsWith(AuthLayout.tokensRoot)) s.tokens.set(name, v as TokenRecord);
    else if (key.startsWith(AuthLayout.scopeMapsRoot)) s.scopeMaps.set(name, v as ScopeMapRecord);
    else if (key.startsWith(AuthLayout.keysRoot)) s.keys.set(name, v as PublicKeyRecord);
  }
  return s;
}

async function readRev(store: ObjectStore): Promise<string> {
  try {
    return (await store.getBytes(AuthLayout.rev)).toString('utf8');
  } catch (err) {
    if (isNotFound(err)) return '';
    throw err;
  }
}

async function readAll(store: ObjectStore): Promise<Map<string, Buffer>> {
  const keys = await listAllKeys(store, AuthLayout.root);
  const out = new Map<string, Buffer>();
  for (let i = 0; i < keys.length; i += 16) {
    const batch = keys.slice(i, i + 16);
    const values = await Promise.all(
      batch.map(async (k) => {
        try {
          return await store.getBytes(k);
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      }),
    );
    batch.forEach((k, j) => {
      const v = values[j];
      if (v) out.set(k, v);
    });
  }
  return out;
}
