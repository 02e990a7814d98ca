import { ACTIVITY_LAG_BOUNDS, quantile } from './activity';

const counts = (byBound: Record<number, number>, inf = 0): number[] =>
  ACTIVITY_LAG_BOUNDS.map((b) => byBound[b] ?? 0).concat(inf);

describe('quantile (histogram_quantile over the activity buckets)', () => {
  it('is null with no observations', () => {
    expect(quantile(0.5, counts({}))).toBeNull();
  });

  it('interpolates linearly inside the bucket that holds the rank', () => {
    // 10 changes in (0.5, 1]: the median sits halfway through that bucket.
    expect(quantile(0.5, counts({ 1: 10 }))).toBeCloseTo(0.75);
    // 90 fast, 10 slow: p50 among the fast, p99 among the slow (in (5, 10]).
    const mixed = counts({ 0.1: 90, 10: 10 });
    expect(quantile(0.5, mixed)!).toBeLessThanOrEqual(0.1);
    expect(quantile(0.99, mixed)!).toBeGreaterThan(5);
    expect(quantile(0.99, mixed)!).toBeLessThanOrEqual(10);
  });

  it('answers the highest finite bound for the +Inf bucket', () => {
    expect(quantile(0.99, counts({}, 3))).toBe(3600);
  });
});
