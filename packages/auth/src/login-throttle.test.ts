import { LoginThrottle, type Reservation } from './login-throttle';

const reserved = (r: Reservation | number): Reservation => {
  if (typeof r === 'number') throw new Error(`throttled for ${r} s`);
  return r;
};

describe('LoginThrottle', () => {
  it('counts an identity per client address: failures elsewhere do not lock it out', async () => {
    const t = new LoginThrottle({ maxFailuresPerIdentity: 3, maxFailuresPerAddress: 100 });
    for (let i = 0; i < 3; i++) reserved(await t.reserve('owner', '203.0.113.1'));
    expect(await t.retryAfter('owner', '203.0.113.1')).toBeGreaterThan(0);
    expect(await t.reserve('owner', '203.0.113.1')).toBeGreaterThan(0);
    expect(await t.retryAfter('owner', '198.51.100.7')).toBe(0);
    expect(await t.retryAfter('alice', '203.0.113.1')).toBe(0);
  });

  it('reserves before the check, so concurrent attempts beyond the limit are refused', async () => {
    const t = new LoginThrottle({ maxFailuresPerIdentity: 10, maxFailuresPerAddress: 100 });
    const all = await Promise.all(
      Array.from({ length: 60 }, () => t.reserve('owner', '192.0.2.9')),
    );
    expect(all.filter((r) => typeof r !== 'number')).toHaveLength(10);
    expect(all.filter((r) => typeof r === 'number')).toHaveLength(50);
  });

  it('gives back the reservation of an attempt that succeeded', async () => {
    const t = new LoginThrottle({ maxFailuresPerIdentity: 2, maxFailuresPerAddress: 100 });
    for (let i = 0; i < 5; i++) await t.release(reserved(await t.reserve('bob', '192.0.2.1')));
    expect(await t.retryAfter('bob', '192.0.2.1')).toBe(0);
  });

  it('throttles an address trying many identities', async () => {
    const t = new LoginThrottle({
      maxFailuresPerIdentity: 100,
      maxFailuresPerAddress: 5,
      windowMs: 10_000,
    });
    for (let i = 0; i < 5; i++) reserved(await t.reserve(`user${i}`, '192.0.2.1'));
    const wait = await t.retryAfter('someone-else', '192.0.2.1');
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(10);
    expect(await t.retryAfter('someone-else', '192.0.2.2')).toBe(0);
  });
});
