import { accessAllows, grantAccess, parseScopes } from './access';
import type { Grant } from './model';
import { isValidPattern, matchesPattern } from './patterns';

describe('repository patterns', () => {
  it('matches exact names, * and wildcards across path segments', () => {
    expect(matchesPattern('*', 'anything/at/all')).toBe(true);
    expect(matchesPattern('team-a/*', 'team-a/app')).toBe(true);
    expect(matchesPattern('team-a/*', 'team-a/tools/lint')).toBe(true);
    expect(matchesPattern('team-a/*', 'team-ab/app')).toBe(false);
    expect(matchesPattern('team-a/*', 'team-a')).toBe(false);
    expect(matchesPattern('library/alpine', 'library/alpine')).toBe(true);
    expect(matchesPattern('library/alpine', 'library/alpine2')).toBe(false);
    expect(matchesPattern('*/base', 'a/b/base')).toBe(true);
  });
  it('validates patterns with the name grammar', () => {
    expect(isValidPattern('team-a/*')).toBe(true);
    expect(isValidPattern('*')).toBe(true);
    expect(isValidPattern('Team/*')).toBe(false);
    expect(isValidPattern('a//b')).toBe(false);
    expect(isValidPattern('')).toBe(false);
  });
});

describe('scopes', () => {
  it('parses, merges and drops what it does not understand', () => {
    expect(
      parseScopes([
        'repository:team-a/app:pull,push',
        'repository:team-a/app:delete registry:catalog:*',
        'repository:BAD:pull',
        'repository:x:fly',
        'nonsense',
        'registry:other:*',
      ]),
    ).toEqual([
      { type: 'repository', name: 'team-a/app', actions: ['pull', 'push', 'delete'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'x', actions: [] },
    ]);
  });

  const grants: Grant[] = [
    { pattern: 'team-a/*', permissions: ['pull', 'push'] },
    { pattern: 'shared', permissions: ['pull'] },
  ];

  it('grants the allowed part of each request and drops the rest', () => {
    const got = grantAccess(
      grants,
      parseScopes([
        'repository:team-a/app:pull,push,delete',
        'repository:shared:pull,push',
        'repository:team-b/app:pull',
        'registry:catalog:*',
      ]),
    );
    expect(got).toEqual([
      { type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'shared', actions: ['pull'] },
    ]);
    expect(accessAllows(got, 'repository', 'team-a/app', 'push')).toBe(true);
    expect(accessAllows(got, 'repository', 'shared', 'push')).toBe(false);
  });

  it('expands * to the granted actions and gives the catalog to registry-wide readers', () => {
    const got = grantAccess(
      [{ pattern: '*', permissions: ['pull', 'metadata_read'] }],
      parseScopes(['repository:a:*', 'registry:catalog:*']),
    );
    expect(got).toEqual([
      { type: 'repository', name: 'a', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });
});
