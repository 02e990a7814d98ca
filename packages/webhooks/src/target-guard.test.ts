import { TargetGuard } from './target-guard';

describe('webhook target guard (SSRF)', () => {
  it('refuses loopback, private, link-local and metadata ranges by default', () => {
    const g = new TargetGuard();
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
    ])
      expect([a, g.permits(a)]).toEqual([a, false]);
    for (const a of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'])
      expect([a, g.permits(a)]).toEqual([a, true]);
  });

  it('allows what the operator lists: names, addresses and CIDR ranges', () => {
    const g = new TargetGuard(['loopback', '10.20.0.0/16']);
    expect(g.permits('127.0.0.1')).toBe(true);
    expect(g.permits('::1')).toBe(true);
    expect(g.permits('10.20.3.4')).toBe(true);
    expect(g.permits('10.21.3.4')).toBe(false);
    expect(g.permits('169.254.169.254')).toBe(false);
    expect(() => new TargetGuard(['nonsense'])).toThrow(/CIDR/);
  });

  it('checks IP literals in URLs and refuses names resolving into denied ranges', async () => {
    const g = new TargetGuard();
    expect(() => g.checkLiteral(new URL('http://127.0.0.1:8080/'))).toThrow(/private, loopback/);
    expect(() => g.checkLiteral(new URL('http://[::1]/'))).toThrow();
    expect(() => g.checkLiteral(new URL('https://hooks.example.com/'))).not.toThrow();
    const err = await new Promise<Error | null>((resolve) => {
      g.lookup('localhost', {}, (e) => resolve(e));
    });
    expect(err?.message).toMatch(/localhost resolves to/);
  });
});
