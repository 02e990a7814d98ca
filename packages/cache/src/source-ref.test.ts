import { upstreamOf } from './cache-rules';
import { parseSourceRef, parseTarget } from './source-ref';

describe('parseSourceRef', () => {
  it('reads REGISTRY/REPO[:TAG|@DIGEST] as docker pull does', () => {
    expect(parseSourceRef('alpine')).toEqual({
      registry: 'docker.io',
      baseUrl: 'https://registry-1.docker.io',
      repository: 'library/alpine',
      reference: 'latest',
    });
    expect(parseSourceRef('docker.io/bitnami/redis:7.2')).toMatchObject({
      repository: 'bitnami/redis',
      reference: '7.2',
    });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseSourceRef(`ghcr.io/org/app@${digest}`)).toEqual({
      registry: 'ghcr.io',
      baseUrl: 'https://ghcr.io',
      repository: 'org/app',
      reference: digest,
    });
    // Loopback speaks HTTP unless told otherwise; a port is a registry.
    expect(parseSourceRef('127.0.0.1:5000/lib/app:v1').baseUrl).toBe('http://127.0.0.1:5000');
    expect(parseSourceRef('localhost/app').baseUrl).toBe('http://localhost');
    expect(parseSourceRef('https://127.0.0.1:5000/app').baseUrl).toBe('https://127.0.0.1:5000');
  });

  it('refuses what is not a reference', () => {
    for (const bad of ['', 'Upper/Case', 'a/b@sha256:short', 'a:b:c', 'host/../x', 'a b'])
      expect(() => parseSourceRef(bad)).toThrow('invalid source');
  });

  it('targets take the source tag unless they name one', () => {
    expect(parseTarget('hub/app', 'v1')).toEqual({ repository: 'hub/app', tag: 'v1' });
    expect(parseTarget('hub/app:v2', 'v1')).toEqual({ repository: 'hub/app', tag: 'v2' });
    expect(parseTarget('hub/app', undefined)).toEqual({ repository: 'hub/app' });
    expect(() => parseTarget('Hub/app', 'v1')).toThrow('invalid target repository');
  });
});

describe('upstreamOf (cache rule mapping)', () => {
  const rule = { source: 'docker.io/library/*', target: 'hub/library/*' };
  it('maps a local repository under the target to the upstream namespace', () => {
    expect(upstreamOf(rule, 'hub/library/alpine')).toEqual({
      baseUrl: 'https://registry-1.docker.io',
      registry: 'docker.io',
      repository: 'library/alpine',
    });
    expect(upstreamOf(rule, 'hub/library/a/b')?.repository).toBe('library/a/b');
  });
  it('matches nothing outside the target', () => {
    expect(upstreamOf(rule, 'hub/library')).toBeUndefined();
    expect(upstreamOf(rule, 'hub/librarything/x')).toBeUndefined();
    expect(upstreamOf(rule, 'other/alpine')).toBeUndefined();
  });
  it('a rule without * maps one repository', () => {
    const one = { source: '127.0.0.1:5000/lib/app', target: 'mirror/app' };
    expect(upstreamOf(one, 'mirror/app')).toEqual({
      baseUrl: 'http://127.0.0.1:5000',
      registry: '127.0.0.1:5000',
      repository: 'lib/app',
    });
    expect(upstreamOf(one, 'mirror/app/x')).toBeUndefined();
  });
});
