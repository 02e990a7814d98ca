import { isValidTag, OciError, parseDigest } from '@meridian/oci';
import {
  RepositoryLayout,
  type LockFlags,
  type LockRecord,
  type LockTarget,
  type ObjectStore,
} from '@meridian/storage';
import type { RegistryEvents } from './events';
import {
  badLock,
  effectiveLock,
  flagsOf,
  LOCK_FLAGS,
  lockDenied,
  NO_LOCKS,
  repositoryLocks,
  validateRules,
  writeOnceRule,
  type EffectiveLock,
  type RepositoryLocks,
} from './lock-rules';
import type { MetadataCache } from './metadata-cache';
import { translated } from './storage-errors';

/** A change to one lock: the flags to set (others keep their value) and the write-once rules. */
export type LockPatch = Partial<LockFlags> & { writeOnce?: string[] };

/** What `LockStore.show` answers: a target's own record and its effective lock. */
export interface LockView {
  repository: string;
  tag?: string;
  digest?: string;
  /** The target's own attributes (all enabled when it has no record). */
  attributes: LockFlags & { writeOnce?: string[] };
  effective: EffectiveLock;
  seq?: number;
  updatedAt?: string;
}

/**
 * Locks over a region's storage (ADR 0015): reads a repository's lock records (one listing,
 * cached like tags for the metadata TTL) and answers what they allow; on the primary, writes
 * them with a growing `seq` and emits `lockChanged`, which replication turns into a sync job.
 */
export class LockStore {
  private readonly layout: RepositoryLayout;
  private lastSeq = 0;
  private readonly writing = new Map<string, Promise<unknown>>();

  constructor(
    store: ObjectStore,
    private readonly cache: MetadataCache,
    private readonly events: RegistryEvents,
    /** Set on a replica: locks change only on the primary. */
    private readonly primaryUrl?: string,
  ) {
    this.layout = new RepositoryLayout(store);
  }

  /** Every lock record of a repository (cached for the metadata TTL). */
  async of(repository: string): Promise<RepositoryLocks> {
    if (this.cache.enabled) {
      const hit = this.cache.locks.get(repository);
      if (hit) return hit;
    }
    const entries = await this.layout.listLocks(repository);
    const locks = entries.length === 0 ? NO_LOCKS : repositoryLocks(entries);
    this.cache.locks.set(repository, locks);
    return locks;
  }

  /**
   * True when this node's cache knows the repository has no lock record at all (every read is
   * allowed); false when it has some or only storage can say. Never reads storage.
   */
  knownUnlocked(repository: string): boolean {
    return this.cache.enabled && this.cache.locks.get(repository) === NO_LOCKS;
  }

  // ——— checks the stores make ———

  /** A blob upload or mount into the repository. */
  async assertUploadAllowed(repository: string): Promise<void> {
    const lock = effectiveLock(await this.of(repository));
    if (!lock.writeEnabled) throw lockDenied(`repository ${repository}`, lock, 'writeEnabled');
  }

  /** A blob or manifest read (pull) of the repository. */
  async assertReadable(
    repository: string,
    at: { tag?: string; digest?: string } = {},
  ): Promise<void> {
    const locks = await this.of(repository);
    if (locks === NO_LOCKS) return;
    const lock = effectiveLock(locks, at);
    if (!lock.readEnabled) throw lockDenied(describe(repository, at), lock, 'readEnabled');
  }

  /** A blob unlink. */
  async assertBlobDeletable(repository: string): Promise<void> {
    const lock = effectiveLock(await this.of(repository));
    if (!lock.deleteEnabled) throw lockDenied(`repository ${repository}`, lock, 'deleteEnabled');
  }

  /**
   * A manifest push: by tag, `currentOf` gives the digest the tag points at now (a move when it
   * differs; read only when the repository has locks); by digest, `tag` is undefined. Write-once
   * tags may be pushed again unchanged.
   */
  async assertPutAllowed(
    repository: string,
    digest: string,
    tag: string | undefined,
    currentOf: () => Promise<string | undefined>,
  ): Promise<void> {
    const locks = await this.of(repository);
    if (locks === NO_LOCKS) return;
    const repo = effectiveLock(locks);
    if (!repo.writeEnabled) throw lockDenied(`repository ${repository}`, repo, 'writeEnabled');
    if (tag === undefined) {
      const m = effectiveLock(locks, { digest });
      if (!m.writeEnabled) throw lockDenied(`manifest ${digest}`, m, 'writeEnabled');
      return;
    }
    const what = `tag ${repository}:${tag}`;
    const current = await currentOf();
    const own = effectiveLock(locks, { tag, digest: current });
    if (!own.writeEnabled) throw lockDenied(what, own, 'writeEnabled');
    if (current !== undefined && current !== digest) {
      const rule = writeOnceRule(locks, tag);
      if (rule)
        throw lockDenied(what, effectiveLock(locks, { tag, tagExists: true }), 'writeEnabled');
    }
  }

  /** Deleting a tag that points at `digest`. */
  async assertTagDeletable(repository: string, tag: string, digest: string): Promise<void> {
    const locks = await this.of(repository);
    if (locks === NO_LOCKS) return;
    const lock = effectiveLock(locks, { tag, digest, tagExists: true });
    if (!lock.deleteEnabled) throw lockDenied(`tag ${repository}:${tag}`, lock, 'deleteEnabled');
  }

  /** Deleting manifest `digest`, and with it `tags` (those pointing at it). */
  async assertManifestDeletable(
    repository: string,
    digest: string,
    tags: () => Promise<string[]>,
  ): Promise<void> {
    const locks = await this.of(repository);
    if (locks === NO_LOCKS) return;
    const lock = effectiveLock(locks, { digest });
    if (!lock.deleteEnabled) throw lockDenied(`manifest ${digest}`, lock, 'deleteEnabled');
    if (locks.tags.size === 0 && !locks.repository?.writeOnce?.length) return;
    for (const tag of await tags()) await this.assertTagDeletable(repository, tag, digest);
  }

  /** Whether a tag pointing at `digest` shows in tag lists. */
  listable(locks: RepositoryLocks, tag: string, digest: string | undefined): boolean {
    return effectiveLock(locks, { tag, digest }).listEnabled;
  }

  // ——— admin ———

  /** A target's own attributes and its effective lock. Throws `NAME_UNKNOWN`/`MANIFEST_UNKNOWN`. */
  show(repository: string, target: LockTarget, tagDigest?: string): Promise<LockView> {
    return translated(async () => {
      const locks = await this.fresh(repository);
      const rec = await this.layout.readLock(repository, target);
      const at =
        target.scope === 'tag'
          ? { tag: target.tag, digest: tagDigest, tagExists: tagDigest !== undefined }
          : target.scope === 'manifest'
            ? { digest: target.digest }
            : {};
      return view(repository, target, rec, effectiveLock(locks, at));
    });
  }

  /**
   * Changes one lock on the primary and announces it (`lockChanged`). The caller checked that
   * the target exists. Updates of one target are serialised on this node; `seq` grows past
   * the stored record's, so the newest write wins in every region.
   */
  update(repository: string, target: LockTarget, patch: LockPatch): Promise<LockRecord> {
    if (this.primaryUrl !== undefined)
      return Promise.reject(
        new OciError(
          'UNSUPPORTED',
          `locks change only on the primary; send this to ${this.primaryUrl}`,
          { primary: this.primaryUrl },
        ),
      );
    let rules: string[] | undefined;
    try {
      rules = validatePatch(target, patch);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const key = `${repository}\0${JSON.stringify(target)}`;
    const prev = this.writing.get(key) ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(() => translated(() => this.write(repository, target, patch, rules)));
    this.writing.set(key, next);
    void next
      .finally(() => {
        if (this.writing.get(key) === next) this.writing.delete(key);
      })
      .catch(() => undefined);
    return next;
  }

  private async write(
    repository: string,
    target: LockTarget,
    patch: LockPatch,
    rules: string[] | undefined,
  ): Promise<LockRecord> {
    const cur = await this.layout.readLock(repository, target);
    const now = Date.now();
    const seq = Math.max(now * 1000, this.lastSeq + 1, (cur?.seq ?? 0) + 1);
    this.lastSeq = seq;
    const flags = flagsOf(cur);
    for (const f of LOCK_FLAGS) if (patch[f] !== undefined) flags[f] = patch[f];
    const writeOnce = rules ?? cur?.writeOnce;
    const rec: LockRecord = {
      ...flags,
      ...(writeOnce && writeOnce.length > 0 ? { writeOnce } : {}),
      seq,
      updatedAt: new Date(now).toISOString(),
    };
    await this.layout.writeLock(repository, target, rec);
    this.cache.locks.delete(repository);
    this.cache.forgetRepository(repository);
    this.cache.tagLists.delete('\0catalog');
    await this.events.emit({
      type: 'lockChanged',
      repository,
      ...(target.scope === 'tag' ? { tag: target.tag } : {}),
      ...(target.scope === 'manifest' ? { digest: target.digest } : {}),
      ...flags,
      ...(rec.writeOnce ? { writeOnce: rec.writeOnce } : {}),
      seq,
      at: now,
    });
    return rec;
  }

  /** The repository's locks read now (not from the cache): what an admin sees. */
  async fresh(repository: string): Promise<RepositoryLocks> {
    this.cache.locks.delete(repository);
    return this.of(repository);
  }
}

function view(
  repository: string,
  target: LockTarget,
  rec: LockRecord | undefined,
  effective: EffectiveLock,
): LockView {
  return {
    repository,
    ...(target.scope === 'tag' ? { tag: target.tag } : {}),
    ...(target.scope === 'manifest' ? { digest: target.digest } : {}),
    attributes: { ...flagsOf(rec), ...(rec?.writeOnce ? { writeOnce: rec.writeOnce } : {}) },
    effective,
    ...(rec ? { seq: rec.seq, updatedAt: rec.updatedAt } : {}),
  };
}

function describe(repository: string, at: { tag?: string; digest?: string }): string {
  if (at.tag !== undefined) return `tag ${repository}:${at.tag}`;
  if (at.digest !== undefined) return `manifest ${repository}@${at.digest}`;
  return `repository ${repository}`;
}

/** The lock target a `REPO[:TAG|@DIGEST]`-style reference names; throws for a malformed one. */
export function lockTargetOf(reference: { tag?: unknown; digest?: unknown }): LockTarget {
  const { tag, digest } = reference;
  if (tag !== undefined && digest !== undefined) throw badLock('name a tag or a digest, not both');
  if (tag !== undefined) {
    if (typeof tag !== 'string' || !isValidTag(tag)) throw badLock('tag is not a valid tag');
    return { scope: 'tag', tag };
  }
  if (digest !== undefined) {
    if (typeof digest !== 'string') throw badLock('digest is not a valid digest');
    try {
      return { scope: 'manifest', digest: parseDigest(digest).value };
    } catch {
      throw badLock('digest is not a valid digest');
    }
  }
  return { scope: 'repository' };
}

/**
 * Checks a lock change before anything is read: known attributes, booleans, write-once rules
 * only on a repository. Returns the rules to store (undefined: keep the current ones).
 */
export function validatePatch(target: LockTarget, patch: LockPatch): string[] | undefined {
  for (const k of Object.keys(patch))
    if (!(LOCK_FLAGS as string[]).includes(k) && k !== 'writeOnce')
      throw badLock(`unknown lock attribute ${k.slice(0, 40)}`);
  for (const f of LOCK_FLAGS)
    if (patch[f] !== undefined && typeof patch[f] !== 'boolean')
      throw badLock(`${f} is not true or false`);
  if (patch.writeOnce !== undefined && target.scope !== 'repository')
    throw badLock('write-once rules are set on a repository, not a tag or manifest');
  return patch.writeOnce === undefined ? undefined : validateRules(patch.writeOnce);
}
