import { OciError } from '@meridian/oci';
import type { LockFlags, LockRecord, LockTarget } from '@meridian/storage';

/**
 * Locks (ADR 0015): what a repository's lock records allow, with no I/O. ACR's semantics: a
 * disabled attribute on the repository applies to everything in it; `writeEnabled=false` also
 * forbids deleting (a locked image can be neither overwritten nor deleted); `listEnabled=false`
 * on the repository hides it from the catalog, on a tag hides the tag from tag lists, on a
 * manifest hides the tags pointing at it and its referrer entry.
 */

export type LockFlag = keyof LockFlags;
export const LOCK_FLAGS: readonly LockFlag[] = [
  'deleteEnabled',
  'writeEnabled',
  'readEnabled',
  'listEnabled',
];

/** Every lock record of one repository, by target. */
export interface RepositoryLocks {
  repository?: LockRecord;
  tags: Map<string, LockRecord>;
  manifests: Map<string, LockRecord>;
}

export const NO_LOCKS: RepositoryLocks = { tags: new Map(), manifests: new Map() };

export function repositoryLocks(
  entries: { target: LockTarget; record: LockRecord }[],
): RepositoryLocks {
  const out: RepositoryLocks = { tags: new Map(), manifests: new Map() };
  for (const { target, record } of entries) {
    if (target.scope === 'repository') out.repository = record;
    else if (target.scope === 'tag') out.tags.set(target.tag, record);
    else out.manifests.set(target.digest, record);
  }
  return out;
}

/** The effective lock of a repository, a tag or a manifest, and what set each disabled flag. */
export interface EffectiveLock extends LockFlags {
  /** Per disabled flag: `repository`, `tag <t>`, `manifest <d>` or `write-once rule <p>`. */
  lockedBy: Partial<Record<LockFlag, string>>;
}

/** Whether a tag names a signature, attestation or SBOM (cosign) or a referrers-fallback index. */
export function isSignatureTag(tag: string): boolean {
  return /^[a-z0-9]+-[a-f0-9]{32,128}(\.(sig|att|sbom))?$/.test(tag);
}

const MAX_RULES = 32;
const MAX_RULE_LENGTH = 256;

/**
 * A write-once rule as a RegExp: `regex:<re>` is a regular expression matched against the whole
 * tag; anything else (optionally `glob:<pattern>`) is a glob where `*` is any run of characters
 * and `?` one character. Throws for a rule that does not compile.
 */
export function compileRule(rule: string): RegExp {
  if (rule.startsWith('regex:')) return new RegExp(`^(?:${rule.slice(6)})$`);
  const glob = rule.startsWith('glob:') ? rule.slice(5) : rule;
  const re = glob
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\-]/g, '\\$&')))
    .join('');
  return new RegExp(`^${re}$`);
}

/** Checks a list of write-once rules; throws `UNSUPPORTED` (400) naming the bad one. */
export function validateRules(rules: unknown): string[] {
  if (!Array.isArray(rules) || rules.some((r) => typeof r !== 'string' || r === ''))
    throw badLock('writeOnce must be a list of tag patterns');
  if (rules.length > MAX_RULES) throw badLock(`at most ${MAX_RULES} write-once rules`);
  for (const r of rules as string[]) {
    if (r.length > MAX_RULE_LENGTH)
      throw badLock(`write-once rule longer than ${MAX_RULE_LENGTH} characters`);
    try {
      compileRule(r);
    } catch (err) {
      throw badLock(`write-once rule ${r}: ${(err as Error).message}`);
    }
  }
  return [...new Set(rules as string[])];
}

/** The write-once rule that makes existing tag `tag` immutable, if any (signatures never are). */
export function writeOnceRule(locks: RepositoryLocks, tag: string): string | undefined {
  const rules = locks.repository?.writeOnce;
  if (!rules || isSignatureTag(tag)) return undefined;
  return rules.find((r) => {
    try {
      return compileRule(r).test(tag);
    } catch {
      return false;
    }
  });
}

/**
 * The effective lock: the repository's record, then the tag's, then the manifest's (the one the
 * tag points at), then write-once for an existing tag. `listEnabled` of the repository is its
 * place in the catalog only, so it does not carry down.
 */
export function effectiveLock(
  locks: RepositoryLocks,
  at: { tag?: string; digest?: string; tagExists?: boolean } = {},
): EffectiveLock {
  const out: EffectiveLock = {
    deleteEnabled: true,
    writeEnabled: true,
    readEnabled: true,
    listEnabled: true,
    lockedBy: {},
  };
  const apply = (rec: LockFlags | undefined, by: string, flags: readonly LockFlag[]) => {
    if (!rec) return;
    for (const f of flags)
      if (rec[f] === false && out[f]) {
        out[f] = false;
        out.lockedBy[f] = by;
      }
  };
  const isRepo = at.tag === undefined && at.digest === undefined;
  apply(
    locks.repository,
    'repository',
    isRepo ? LOCK_FLAGS : ['deleteEnabled', 'writeEnabled', 'readEnabled'],
  );
  if (at.tag !== undefined) apply(locks.tags.get(at.tag), `tag ${at.tag}`, LOCK_FLAGS);
  if (at.digest !== undefined)
    apply(locks.manifests.get(at.digest), `manifest ${at.digest}`, LOCK_FLAGS);
  if (at.tag !== undefined && at.tagExists) {
    const rule = writeOnceRule(locks, at.tag);
    if (rule)
      apply(
        { deleteEnabled: false, writeEnabled: false, readEnabled: true, listEnabled: true },
        `write-once rule ${rule}`,
        ['deleteEnabled', 'writeEnabled'],
      );
  }
  // A locked image can be neither overwritten nor deleted.
  if (!out.writeEnabled && out.deleteEnabled) {
    out.deleteEnabled = false;
    out.lockedBy.deleteEnabled = out.lockedBy.writeEnabled!;
  }
  return out;
}

/** The OCI `DENIED` error for an operation a lock forbids, naming the lock. */
export function lockDenied(what: string, lock: EffectiveLock, flag: LockFlag): OciError {
  const by = lock.lockedBy[flag] ?? 'a lock';
  return new OciError('DENIED', `${what} is locked: ${flag}=false on ${by}`, {
    lock: flag,
    lockedBy: by,
  });
}

export function badLock(why: string): OciError {
  return new OciError('UNSUPPORTED', why, undefined, 400);
}

/** The flags of a record (defaults: enabled). */
export function flagsOf(rec: LockRecord | undefined): LockFlags {
  return {
    deleteEnabled: rec?.deleteEnabled !== false,
    writeEnabled: rec?.writeEnabled !== false,
    readEnabled: rec?.readEnabled !== false,
    listEnabled: rec?.listEnabled !== false,
  };
}
