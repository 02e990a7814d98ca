import { pipeline } from 'node:stream/promises';
import type { V2Context } from '../http/context';
import { API_VERSION_HEADER, sendEmpty } from '../http/send';
import { sendFileRegion } from '../http/send-file';
import { cacheHeader } from '../http/cache-header';

/**
 * `GET`/`HEAD /v2/<name>/blobs/<digest>`, with single `Range` support (206 / 416). With
 * `blobRedirect` on, a whole-blob `GET` the store can presign is a `307` to the storage URL.
 */
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
      ...cacheHeader(info),
    });
    res.end();
    return;
  }
  const redirect = registry.opts.blobRedirect;
  if (redirect && req.headers.range === undefined) {
    const direct = await registry.blobs.directUrl(name, param, redirect.expiresSeconds);
    if (direct) {
      sendEmpty(res, 307, {
        ...API_VERSION_HEADER,
        Location: direct.url,
        'Docker-Content-Digest': direct.digest,
      });
      return;
    }
  }
  const blob = await registry.blobs.read(name, param, headerValue(req.headers.range));
  const headers: Record<string, string | number> = {
    ...API_VERSION_HEADER,
    'Content-Type': 'application/octet-stream',
    'Content-Length': blob.length,
    'Docker-Content-Digest': blob.digest,
    'Accept-Ranges': 'bytes',
    ETag: `"${blob.digest}"`,
    ...cacheHeader(blob),
  };
  if (blob.range)
    headers['Content-Range'] = `bytes ${blob.range.start}-${blob.range.end}/${blob.size}`;
  res.writeHead(blob.range ? 206 : 200, headers);
  if (!blob.file) return pipeline(blob.body, res);
  const file = blob.file;
  try {
    await sendFileRegion(res, file);
  } finally {
    await file.close();
  }
}

/** `DELETE /v2/<name>/blobs/<digest>` */
export async function deleteBlob({ res, name, param, registry }: V2Context): Promise<void> {
  await registry.blobs.delete(name, param);
  sendEmpty(res, 202, API_VERSION_HEADER);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}
