import { attemptsWithin, backoffDelay, Breakers, EndpointSlots, nominalDelay } from './backoff';
import { retryAfter } from './http-send';

describe('delivery retry timing', () => {
  const p = { baseMs: 1000, maxMs: 3_600_000, horizonMs: 86_400_000 };

  it('doubles from the base up to the cap, with ±20 % jitter', () => {
    expect([1, 2, 3, 4].map((n) => nominalDelay(n, p))).toEqual([1000, 2000, 4000, 8000]);
    expect(nominalDelay(30, p)).toBe(3_600_000);
    expect(backoffDelay(1, p, () => 0)).toBe(800);
    expect(backoffDelay(1, p, () => 1)).toBe(1200);
  });

  it('fits as many attempts as the horizon allows (24 h: doublings, then hourly)', () => {
    const n = attemptsWithin(p);
    let waited = 0;
    for (let i = 1; i < n; i++) waited += nominalDelay(i, p);
    expect(waited).toBeLessThanOrEqual(p.horizonMs);
    expect(waited + nominalDelay(n, p)).toBeGreaterThan(p.horizonMs);
    expect(n).toBe(35); // 12 doublings (1 s … 34 min), then 22 hourly waits
    expect(attemptsWithin({ ...p, horizonMs: 0 })).toBe(1);
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfter('5')).toBe(5000);
    expect(retryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfter('soon')).toBeUndefined();
  });
});

describe('circuit breaker and endpoint slots', () => {
  it('opens after consecutive failures, longer each time, and closes on success', () => {
    const b = new Breakers(3, 1000, 10_000);
    for (let i = 0; i < 2; i++) b.failure('a', 0);
    expect(b.openUntil('a', 0)).toBe(0);
    b.failure('a', 0);
    expect(b.openUntil('a', 0)).toBe(1000);
    b.failure('a', 0);
    expect(b.openUntil('a', 0)).toBe(2000);
    expect(b.openUntil('b', 0)).toBe(0);
    b.success('a');
    expect(b.openUntil('a', 0)).toBe(0);
  });

  it('limits deliveries in flight per endpoint', () => {
    const s = new EndpointSlots(2);
    expect(s.tryAcquire('a')).toBe(true);
    expect(s.tryAcquire('a')).toBe(true);
    expect(s.tryAcquire('a')).toBe(false);
    expect(s.tryAcquire('b')).toBe(true);
    s.release('a');
    expect(s.tryAcquire('a')).toBe(true);
  });
});
