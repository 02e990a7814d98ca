import { attemptsWithin, backoffDelay, EndpointSlots, nominalDelay } from './backoff';
import { LocalBreakers } from './circuit-breaker';
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
  it('opens after consecutive failures, longer after each failed probe, and closes on success', async () => {
    let now = 0;
    const b = new LocalBreakers({ threshold: 3, baseOpenMs: 1000, maxOpenMs: 10_000 }, () => now);
    const closed = await b.admit('a');
    for (let i = 0; i < 3; i++) await b.failure('a', closed);
    expect(await b.admit('a')).toEqual({ send: false, retryInMs: 1000 });
    expect((await b.admit('b')).send).toBe(true); // other endpoints are not held back
    // A failure of an attempt admitted before it opened neither counts nor extends it.
    await b.failure('a', closed);
    expect(await b.admit('a')).toEqual({ send: false, retryInMs: 1000 });
    now = 1000;
    // Half-open: exactly one probe; the others wait for its verdict.
    const probe = await b.admit('a');
    expect(probe).toMatchObject({ send: true, probe: true });
    expect((await b.admit('a')).send).toBe(false);
    await b.failure('a', probe);
    expect(await b.admit('a')).toEqual({ send: false, retryInMs: 2000 });
    now = 3000;
    const again = await b.admit('a');
    expect(again).toMatchObject({ send: true, probe: true });
    await b.success('a', again);
    expect(await b.admit('a')).toEqual({ send: true, probe: false, failures: 0 });
  });

  it('lets another probe through when the probe had no verdict (429, refused)', async () => {
    let now = 0;
    const b = new LocalBreakers({ threshold: 1, baseOpenMs: 1000 }, () => now);
    await b.failure('a', await b.admit('a'));
    now = 1000;
    const probe = await b.admit('a');
    await b.release('a', probe);
    expect(await b.admit('a')).toMatchObject({ send: true, probe: true });
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

  it('hands a released slot to the one waiting for it, or gives up after the wait', async () => {
    const s = new EndpointSlots(1);
    expect(s.tryAcquire('a')).toBe(true);
    const waiting = s.acquire('a', 10_000);
    s.release('a'); // goes to the waiter, not back to the pool
    expect(await waiting).toBe(true);
    expect(s.tryAcquire('a')).toBe(false);
    expect(await s.acquire('a', 10)).toBe(false);
    s.release('a');
    expect(s.tryAcquire('a')).toBe(true);
  });
});
