import type { IncomingMessage } from 'node:http';
import { OciError } from '@meridian/oci';

function tooLarge(limit: number): OciError {
  return new OciError(
    'SIZE_INVALID',
    `request body is larger than the limit of ${limit} bytes`,
    undefined,
    413,
  );
}

/** Reads a small request body (a manifest) with a hard limit; larger bodies get 413. */
export async function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > limit) throw tooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, n);
}

/** Whether the request carries a body (a length above zero, or a chunked transfer). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return Number(len) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/** The declared Content-Length, or undefined. Throws `SIZE_INVALID` on a malformed value. */
export function contentLength(req: IncomingMessage): number | undefined {
  const len = req.headers['content-length'];
  if (len === undefined) return undefined;
  const n = Number(len);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new OciError('SIZE_INVALID', 'invalid Content-Length');
  return n;
}
