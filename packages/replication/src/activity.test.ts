import { ACTIVITY_LAG_BOUNDS, bucketBound, nearestRank } from './activity';

const counts = (byBound: Record<number, number>, inf = 0): number[] =>
  ACTIVITY_LAG_BOUNDS.map((b) => byBound[b] ?? 0).concat(inf);

describe('nearestRank (exact quantiles of recorded lags)', () => {
  it('is null with no values', () => {
    expect(nearestRank(0.99, [])).toBeNull();
  });

  it('answers a value that was observed, never more than the slowest', () => {
    // The case: the slowest lag observed was 1.30 s; p99 must not read 1.9 s.
    const lags = [0.12, 0.2, 0.35, 0.41, 0.5, 0.62, 0.8, 0.9, 1.1, 1.3];
    expect(nearestRank(0.99, lags)).toBe(1.3);
    expect(nearestRank(0.5, lags)).toBe(0.5);
  });

  it('takes the smallest value with at least q of the values at or below it', () => {
    const lags = Array.from({ length: 200 }, (_, i) => (i + 1) / 100); // 0.01 … 2.00
    expect(nearestRank(0.99, lags)).toBe(1.98);
    expect(nearestRank(0.5, lags)).toBe(1);
    expect(nearestRank(0.5, [7])).toBe(7);
  });
});

describe('bucketBound (what a histogram alone can say)', () => {
  it('is null with no observations', () => {
    expect(bucketBound(0.5, counts({}))).toBeNull();
  });

  it('answers the upper bound of the bucket holding the quantile, not an interpolation', () => {
    // 10 changes in (1, 2]: both quantiles are "at most 2 s".
    expect(bucketBound(0.5, counts({ 2: 10 }))).toBe(2);
    expect(bucketBound(0.99, counts({ 2: 10 }))).toBe(2);
    const mixed = counts({ 0.1: 90, 10: 10 });
    expect(bucketBound(0.5, mixed)).toBe(0.1);
    expect(bucketBound(0.99, mixed)).toBe(10);
  });

  it('answers the highest finite bound for the +Inf bucket', () => {
    expect(bucketBound(0.99, counts({}, 3))).toBe(3600);
  });
});
