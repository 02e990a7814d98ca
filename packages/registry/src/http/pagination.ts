import { OciError } from '@meridian/oci';
import { queryParam } from './query';

/**
 * Parses `n` and `last`. `n` must be a non-negative integer in decimal digits (`1e3`, `0x10`,
 * ` 1` are not); anything else is a 400 (the spec has no code for it, `UNSUPPORTED` says the
 * request cannot be served as asked).
 */
export function parsePage(url: URL): { n?: number; last?: string } {
  const nRaw = queryParam(url, 'n');
  const last = queryParam(url, 'last');
  if (nRaw === undefined || nRaw === '') return { last };
  const n = Number(nRaw);
  if (!/^\d+$/.test(nRaw) || !Number.isSafeInteger(n))
    throw new OciError(
      'UNSUPPORTED',
      'n must be a non-negative integer',
      { n: nRaw.slice(0, 20) },
      400,
    );
  return { n, last };
}
