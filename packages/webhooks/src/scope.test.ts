import { parseScope, scopeMatches } from './scope';

const m = (scope: string, repo: string, tag?: string) => scopeMatches(parseScope(scope), repo, tag);

describe('webhook scopes (ACR grammar plus globs)', () => {
  it('empty matches everything, tagged or not', () => {
    expect(m('', 'a/b', 'v1')).toBe(true);
    expect(m('', 'a', undefined)).toBe(true);
  });

  it('repo:tag, repo:* and repo (= repo:latest)', () => {
    expect(m('hello:v1', 'hello', 'v1')).toBe(true);
    expect(m('hello:v1', 'hello', 'v2')).toBe(false);
    expect(m('hello:v1', 'hello2', 'v1')).toBe(false);
    expect(m('hello:*', 'hello', 'anything')).toBe(true);
    expect(m('hello:*', 'hello', undefined)).toBe(true);
    expect(m('hello', 'hello', 'latest')).toBe(true);
    expect(m('hello', 'hello', 'v1')).toBe(false);
    expect(m('hello:v1', 'hello', undefined)).toBe(false);
  });

  it('globs: * within a segment, ** across, * in tags', () => {
    expect(m('team-a/*:*', 'team-a/app', 'v1')).toBe(true);
    expect(m('team-a/*:*', 'team-a/x/app', 'v1')).toBe(false);
    expect(m('team-a/**:v*', 'team-a/x/app', 'v1.2')).toBe(true);
    expect(m('team-a/**:v*', 'team-a/app', 'latest')).toBe(false);
    expect(m('team-a/**:*', 'team-b/app', 'v1')).toBe(false);
    expect(m('**/app:*', 'app', 'v1')).toBe(true);
    expect(m('**/app:*', 'x/y/app', 'v1')).toBe(true);
    // Regex characters in names are literal.
    expect(m('a.b:*', 'axb', 'v1')).toBe(false);
  });

  it('refuses what is not a name or a tag', () => {
    expect(() => parseScope('UPPER:v1')).toThrow(/repository/);
    expect(() => parseScope('ok:bad tag')).toThrow(/tag/);
    expect(() => parseScope('a//b')).toThrow();
  });
});
