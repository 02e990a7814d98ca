import { OciError } from '@meridian/oci';

/** An inclusive, satisfiable byte range of an object of a known size. */
export interface ResolvedRange {
  start: number;
  end: number;
}

/**
 * Resolves an HTTP `Range` header (RFC 9110 §14) against an object of `size` bytes.
 * - absent, another unit, or several ranges: undefined (serve the whole object, as RFC 9110 allows);
 * - `bytes=a-b`, `bytes=a-` and `bytes=-n`: the satisfiable part, `b` clamped to the last byte;
 * - malformed, `b < a`, `a >= size` or `-0`: 416, with the size so the response can carry
 *   `Content-Range: bytes * /size`. The spec has no dedicated code; `SIZE_INVALID` is the closest.
 */
export function resolveRange(header: string | undefined, size: number): ResolvedRange | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (!/^bytes=/i.test(value)) return undefined;
  const spec = value.slice(6).trim();
  if (spec.includes(',')) return undefined;
  const m = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
  if (!m || (m[1] === '' && m[2] === '')) throw unsatisfiable(size, 'malformed Range header');
  const [, a, b] = m;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) throw unsatisfiable(size, 'requested range not satisfiable');
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (b !== '' && Number(b) < start) throw unsatisfiable(size, 'range end before start');
  if (start >= size) throw unsatisfiable(size, 'range starts beyond the end of the blob');
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  return { start, end };
}

function unsatisfiable(size: number, message: string): OciError {
  return new OciError('SIZE_INVALID', message, { size }, 416);
}
