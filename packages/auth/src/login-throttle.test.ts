import { LoginThrottle } from './login-throttle';

describe('LoginThrottle', () => {
  it('throttles an identity after max failures within the window, then lets it go', () => {
    const t = new LoginThrottle({
      maxFailuresPerIdentity: 3,
      maxFailuresPerAddress: 100,
      windowMs: 60_000,
    });
    const t0 = 1_000_000;
    for (let i = 0; i < 3; i++) {
      expect(t.retryAfter('alice', `10.0.0.${i}`, t0 + i)).toBe(0);
      t.recordFailure('alice', `10.0.0.${i}`, t0 + i);
    }
    expect(t.retryAfter('alice', '10.0.0.9', t0 + 10)).toBe(60);
    expect(t.retryAfter('bob', '10.0.0.9', t0 + 10)).toBe(0);
    expect(t.retryAfter('alice', '10.0.0.9', t0 + 60_001)).toBe(0);
  });

  it('throttles an address trying many identities', () => {
    const t = new LoginThrottle({
      maxFailuresPerIdentity: 100,
      maxFailuresPerAddress: 5,
      windowMs: 10_000,
    });
    for (let i = 0; i < 5; i++) t.recordFailure(`user${i}`, '192.0.2.1', 1000);
    expect(t.retryAfter('someone-else', '192.0.2.1', 2000)).toBe(9);
    expect(t.retryAfter('someone-else', '192.0.2.2', 2000)).toBe(0);
  });
});
