import { AddressGuard, embeddedIpv4, parseCidr } from './address-guard';

describe('AddressGuard', () => {
  const guard = new AddressGuard({ deny: ['metadata', 'linklocal', 'loopback', '10.0.0.0/8'] });

  it('names the range that refuses an address, metadata before link-local', () => {
    expect(guard.refusal('169.254.169.254')).toBe('a cloud metadata address');
    expect(guard.refusal('169.254.1.1')).toBe('a link-local address');
    expect(guard.refusal('fe80::1')).toBe('a link-local address');
    expect(guard.refusal('127.0.0.5')).toBe('a loopback address');
    expect(guard.refusal('10.9.8.7')).toBe('in the refused range 10.0.0.0/8');
    expect(guard.refusal('192.168.1.1')).toBeUndefined();
    expect(guard.refusal('2606:4700::1111')).toBeUndefined();
  });

  it('refuses an IPv6 address that carries a refused IPv4 one: mapped, compatible, NAT64, 6to4', () => {
    for (const a of [
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '::169.254.169.254',
      '64:ff9b::169.254.169.254',
      '64:ff9b::a9fe:a9fe',
      '2002:a9fe:a9fe::1',
    ])
      expect([a, guard.refusal(a)]).toEqual([a, 'a cloud metadata address']);
    expect(guard.refusal('64:ff9b::808:808')).toBeUndefined();
    expect(embeddedIpv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIpv4('::1')).toBeUndefined();
    expect(embeddedIpv4('2001:db8::1')).toBeUndefined();
  });

  it('lets allow ranges through, and checks URL literals', () => {
    const g = new AddressGuard({ deny: ['loopback', 'linklocal'], allow: ['127.0.0.1'] });
    expect(g.permits('127.0.0.1')).toBe(true);
    expect(g.permits('127.0.0.2')).toBe(false);
    expect(() => g.checkLiteral(new URL('http://[::1]:5000/'))).toThrow(
      '::1 is a loopback address',
    );
    expect(() => g.checkLiteral(new URL('http://127.0.0.1:5000/'))).not.toThrow();
    expect(() => g.checkLiteral(new URL('http://registry.example/'))).not.toThrow();
  });

  it('refuses a name when any address it resolves to is refused', async () => {
    const g = new AddressGuard({
      deny: ['metadata'],
      resolve: (host, _family, cb) =>
        cb(
          null,
          host === 'meta.test'
            ? [
                { address: '203.0.113.9', family: 4 },
                { address: '169.254.169.254', family: 4 },
              ]
            : [{ address: '203.0.113.9', family: 4 }],
        ),
    });
    const look = (host: string, all: boolean) =>
      new Promise<{ err: Error | null; address: unknown }>((resolve) =>
        g.lookup(host, { all }, (err, address) => resolve({ err, address })),
      );
    const refused = await look('meta.test', false);
    expect(refused.err?.message).toBe(
      'meta.test resolves to 169.254.169.254, a cloud metadata address',
    );
    expect((refused.err as Error & { code: string }).code).toBe('ETARGETREFUSED');
    expect(await look('ok.test', false)).toEqual({ err: null, address: '203.0.113.9' });
    expect((await look('ok.test', true)).address).toEqual([{ address: '203.0.113.9', family: 4 }]);
  });

  it('rejects what is neither a range name, an address nor a CIDR range', () => {
    expect(() => parseCidr('nonsense')).toThrow(/CIDR/);
    expect(() => parseCidr('10.0.0.0/33')).toThrow('invalid CIDR range: 10.0.0.0/33');
    expect(() => parseCidr('10.0.0.0/8/1')).toThrow(/CIDR/);
    expect(parseCidr('fd00::/8')).toEqual(['fd00::', 8, 'ipv6']);
    expect(() => new AddressGuard({ deny: ['loopbak'] })).toThrow(/loopbak/);
  });
});
