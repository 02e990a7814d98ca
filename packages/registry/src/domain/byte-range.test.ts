import { OciError } from '@meridian/oci';
import { resolveRange } from './byte-range';

const unsatisfiable = (header: string, size: number) => {
  try {
    resolveRange(header, size);
  } catch (err) {
    expect(err).toBeInstanceOf(OciError);
    expect(err).toMatchObject({ code: 'SIZE_INVALID', status: 416, detail: { size } });
    return;
  }
  throw new Error(`${header} on ${size} bytes was satisfiable`);
};

describe('resolveRange', () => {
  it('resolves first-last, open-ended and suffix ranges, clamping to the last byte', () => {
    expect(resolveRange('bytes=500-1499', 2048)).toEqual({ start: 500, end: 1499 });
    expect(resolveRange('bytes=500-', 2048)).toEqual({ start: 500, end: 2047 });
    expect(resolveRange('bytes=-500', 2048)).toEqual({ start: 1548, end: 2047 });
    expect(resolveRange('bytes=-5000', 2048)).toEqual({ start: 0, end: 2047 });
    expect(resolveRange('bytes=2000-5000', 2048)).toEqual({ start: 2000, end: 2047 });
    expect(resolveRange(' bytes=0-0 ', 1)).toEqual({ start: 0, end: 0 });
  });

  it('ignores an absent header, another unit and multiple ranges', () => {
    expect(resolveRange(undefined, 10)).toBeUndefined();
    expect(resolveRange('items=0-5', 10)).toBeUndefined();
    expect(resolveRange('bytes=0-1,4-5', 10)).toBeUndefined();
  });

  it('refuses what cannot be satisfied, with the size for Content-Range', () => {
    unsatisfiable('bytes=500-0', 2048);
    unsatisfiable('bytes=2048-', 2048);
    unsatisfiable('bytes=5000-10000', 2048);
    unsatisfiable('bytes=-0', 2048);
    unsatisfiable('bytes=0-', 0);
    unsatisfiable('bytes=-1', 0);
    unsatisfiable('bytes=abc', 10);
    unsatisfiable('bytes=-', 10);
  });
});
