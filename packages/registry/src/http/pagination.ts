import { OciError } from '@meridian/oci';

/**
 * Parses `n` and `last`. `n` must be a non-negative integer; anything else is a 400 (the spec
 * has no code for it, `UNSUPPORTED` says the request cannot be served as asked).
 */
export function parsePage(url: URL): { n?: number; last?: string } {
  const nRaw = url.searchParams.get('n');
  const last = url.searchParams.get('last') ?? undefined;
  if (nRaw === null || nRaw === '') return { last };
  const n = Number(nRaw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new OciError(
      'UNSUPPORTED',
      'n must be a non-negative integer',
      { n: nRaw.slice(0, 20) },
      400,
    );
  return { n, last };
}
