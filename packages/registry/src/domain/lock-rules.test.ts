import type { LockRecord } from '@meridian/storage';
import {
  compileRule,
  effectiveLock,
  isSignatureTag,
  validateRules,
  writeOnceRule,
  type RepositoryLocks,
} from './lock-rules';

const rec = (flags: Partial<LockRecord>): LockRecord => ({
  deleteEnabled: true,
  writeEnabled: true,
  readEnabled: true,
  listEnabled: true,
  seq: 1,
  updatedAt: '',
  ...flags,
});
const D = `sha256:${'a'.repeat(64)}`;

describe('lock rules', () => {
  it('globs and regexes match whole tags', () => {
    expect(compileRule('v*').test('v1.2')).toBe(true);
    expect(compileRule('v*').test('xv1')).toBe(false);
    expect(compileRule('glob:release-?').test('release-1')).toBe(true);
    expect(compileRule('glob:1.0.*').test('1.0.7')).toBe(true);
    expect(compileRule('glob:1.0.*').test('1x0x7')).toBe(false);
    expect(compileRule('regex:v\\d+\\.\\d+').test('v1.2')).toBe(true);
    expect(compileRule('regex:v\\d+').test('v1-rc')).toBe(false);
  });

  it('refuses rules that do not compile, and too many', () => {
    expect(() => validateRules(['regex:(('])).toThrow('write-once rule');
    expect(() => validateRules('v*')).toThrow('list');
    expect(() => validateRules(Array.from({ length: 40 }, (_, i) => `r${i}`))).toThrow('at most');
    expect(validateRules(['v*', 'v*'])).toEqual(['v*']);
  });

  it('exempts signature, attestation, SBOM and referrers-fallback tags from write-once', () => {
    const locks: RepositoryLocks = {
      repository: rec({ writeOnce: ['*'] }),
      tags: new Map(),
      manifests: new Map(),
    };
    for (const t of [
      'a'.repeat(64),
      `sha256-${'a'.repeat(64)}.sig`,
      `sha256-${'b'.repeat(64)}.att`,
    ])
      expect(isSignatureTag(t.startsWith('sha') ? t : `sha256-${t}`)).toBe(true);
    expect(writeOnceRule(locks, `sha256-${'a'.repeat(64)}.sig`)).toBeUndefined();
    expect(writeOnceRule(locks, `sha256-${'a'.repeat(64)}`)).toBeUndefined();
    expect(writeOnceRule(locks, 'v1')).toBe('*');
  });

  it('combines repository, tag, manifest and write-once, naming what locked each flag', () => {
    const locks: RepositoryLocks = {
      repository: rec({ readEnabled: false, listEnabled: false, writeOnce: ['v*'] }),
      tags: new Map([['latest', rec({ deleteEnabled: false })]]),
      manifests: new Map([[D, rec({ writeEnabled: false })]]),
    };
    const repo = effectiveLock(locks);
    expect(repo).toMatchObject({ readEnabled: false, listEnabled: false, writeEnabled: true });
    // The repository's listEnabled is its place in the catalog: tags stay listable.
    const latest = effectiveLock(locks, { tag: 'latest' });
    expect(latest).toMatchObject({ readEnabled: false, listEnabled: true, deleteEnabled: false });
    expect(latest.lockedBy).toEqual({ readEnabled: 'repository', deleteEnabled: 'tag latest' });
    // A write lock forbids deleting too.
    const m = effectiveLock(locks, { tag: 'latest', digest: D });
    expect(m.writeEnabled).toBe(false);
    expect(m.lockedBy.writeEnabled).toBe(`manifest ${D}`);
    const v1 = effectiveLock(locks, { tag: 'v1', tagExists: true });
    expect(v1.lockedBy).toMatchObject({
      writeEnabled: 'write-once rule v*',
      deleteEnabled: 'write-once rule v*',
    });
    expect(effectiveLock(locks, { tag: 'v1' }).writeEnabled).toBe(true);
  });
});
