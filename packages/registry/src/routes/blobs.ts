import { pipeline } from 'node:stream/promises';
import type { ByteRange } from '@meridian/storage';
import { OciError } from '@meridian/oci';
import type { V2Context } from '../http/context';
import { API_VERSION_HEADER, sendEmpty } from '../http/send';

/** `GET`/`HEAD /v2/<name>/blobs/<digest>`, with single `Range` support. */
export async function getBlob({ req, res, name, param, registry }: V2Context): Promise<void> {
  if (req.method === 'HEAD') {
    const info = await registry.blobs.stat(name, param);
    res.writeHead(200, {
      ...API_VERSION_HEADER,
      'Content-Type': 'application/octet-stream',
      'Content-Length': info.size,
      'Docker-Content-Digest': info.digest,
      'Accept-Ranges': 'bytes',
      ETag: `"${info.digest}"`,
    });
    res.end();
    return;
  }
  const range = parseRange(req.headers.range);
  const blob = await registry.blobs.open(name, param, range);
  const headers: Record<string, string | number> = {
    ...API_VERSION_HEADER,
    'Content-Type': 'application/octet-stream',
    'Content-Length': blob.length,
    'Docker-Content-Digest': blob.digest,
    'Accept-Ranges': 'bytes',
    ETag: `"${blob.digest}"`,
  };
  if (range) {
    const end = range.start + blob.length - 1;
    headers['Content-Range'] = `bytes ${range.start}-${end}/${blob.size}`;
  }
  res.writeHead(range ? 206 : 200, headers);
  await pipeline(blob.body, res);
}

/** `DELETE /v2/<name>/blobs/<digest>` */
export async function deleteBlob({ res, name, param, registry }: V2Context): Promise<void> {
  await registry.blobs.delete(name, param);
  sendEmpty(res, 202, API_VERSION_HEADER);
}

/**
 * Parses `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` (suffix). Several ranges are served as the
 * whole blob (RFC 9110 allows ignoring Range); a malformed one is 416, as Go's http.ServeContent
 * answers for distribution.
 */
export function parseRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) {
    if (/^bytes=[\d\s,-]+$/.test(header) && header.includes(',')) return undefined;
    throw new OciError('RANGE_INVALID', 'malformed Range header', undefined, 416);
  }
  const [, a, b] = m;
  if (a === '' && b === '') throw new OciError('RANGE_INVALID', 'malformed Range header', undefined, 416);
  if (a === '') return { start: -Number(b) };
  const start = Number(a);
  if (b === '') return { start };
  const end = Number(b);
  if (end < start) throw new OciError('RANGE_INVALID', 'range end before start', undefined, 416);
  return { start, end };
}
