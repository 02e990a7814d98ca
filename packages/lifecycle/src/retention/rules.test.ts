import { compileRule, type RetentionRule } from './rules';

const DAY = 86_400_000;

describe('compileRule', () => {
  const ok: RetentionRule = { name: 'old', repositories: 'team/.*', olderThan: '30d' };

  it('turns a rule into purge criteria, patterns anchored to the whole name', () => {
    const c = compileRule({ ...ok, tags: 'v.*', exclude: 'v1', keep: 3, untagged: true });
    const f = c.criteria.filters[0]!;
    expect(f.repository.test('team/app')).toBe(true);
    expect(f.repository.test('x/team/app')).toBe(false);
    expect(f.tag.test('v2')).toBe(true);
    expect(c.criteria.exclude!.test('v1')).toBe(true);
    expect(c.criteria.exclude!.test('v10')).toBe(false);
    expect(c.criteria).toMatchObject({ agoMs: 30 * DAY, keep: 3, untagged: true });
  });

  it('refuses what could overflow, backtrack or match everything', () => {
    expect(() => compileRule({ ...ok, olderThan: '36501d' })).toThrow(/over 100 years/);
    expect(() => compileRule({ ...ok, notPulledFor: '1y' })).toThrow(/not a duration/);
    expect(() => compileRule({ ...ok, repositories: '(a)\\1' })).toThrow(/repositories/);
    expect(() => compileRule({ ...ok, tags: 'x'.repeat(513) })).toThrow(/longer than 512/);
    expect(() => compileRule({ name: 'all', repositories: '.*' })).toThrow(/needs keep/);
    expect(() => compileRule({ ...ok, name: 'Bad Name' })).toThrow(/name/);
    expect(() => compileRule({ ...ok, maxShare: 2 })).toThrow(/maxShare/);
  });

  it('fingerprints the definition: any change is a new rule', () => {
    const a = compileRule(ok).fingerprint;
    expect(compileRule({ ...ok }).fingerprint).toBe(a);
    expect(
      compileRule({ olderThan: '30d', repositories: 'team/.*', name: 'old' }).fingerprint,
    ).toBe(a);
    expect(compileRule({ ...ok, olderThan: '31d' }).fingerprint).not.toBe(a);
  });
});
