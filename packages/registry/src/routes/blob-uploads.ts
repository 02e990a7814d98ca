import { OciError } from '@meridian/oci';
import type { V2Context } from '../http/context';
import { contentLength, hasBody } from '../http/body';
import { queryParam } from '../http/query';
import { API_VERSION_HEADER, sendEmpty } from '../http/send';
import type { ChunkRange, UploadState } from '../domain/upload-sessions';

function sessionHeaders(name: string, s: UploadState): Record<string, string> {
  return {
    ...API_VERSION_HEADER,
    Location: `/v2/${name}/blobs/uploads/${s.id}`,
    Range: `0-${Math.max(0, s.offset - 1)}`,
    'Docker-Upload-UUID': s.id,
  };
}

function blobCreated(name: string, digest: string): Record<string, string> {
  return {
    ...API_VERSION_HEADER,
    Location: `/v2/${name}/blobs/${digest}`,
    'Docker-Content-Digest': digest,
  };
}

/** `POST /v2/<name>/blobs/uploads/` — new session, monolithic upload, or cross-repository mount. */
export async function startUpload({ req, res, url, name, registry }: V2Context): Promise<void> {
  const mount = queryParam(url, 'mount');
  const digest = queryParam(url, 'digest');
  if (mount !== undefined) {
    req.resume();
    const r = await registry.uploads.mountOrCreate(name, mount, queryParam(url, 'from'));
    if (r.mounted) return sendEmpty(res, 201, blobCreated(name, r.mounted.digest));
    return sendEmpty(res, 202, sessionHeaders(name, r.session));
  }
  if (digest !== undefined) {
    const blob = await registry.uploads.monolithic(name, digest, req, contentLength(req));
    return sendEmpty(res, 201, blobCreated(name, blob.digest));
  }
  req.resume();
  const s = await registry.uploads.create(name);
  sendEmpty(res, 202, sessionHeaders(name, s));
}

/** `PATCH /v2/<name>/blobs/uploads/<id>` — streamed or chunked (`Content-Range`) data. */
export async function patchUpload({ req, res, name, param, registry }: V2Context): Promise<void> {
  const range = parseContentRange(req.headers['content-range']);
  const s = await registry.uploads.append(name, param, req, {
    range,
    contentLength: contentLength(req),
  });
  sendEmpty(res, 202, sessionHeaders(name, s));
}

/** `PUT /v2/<name>/blobs/uploads/<id>?digest=` — optional last chunk (with `Content-Range`), then commit. */
export async function finishUpload({
  req,
  res,
  url,
  name,
  param,
  registry,
}: V2Context): Promise<void> {
  const digest = queryParam(url, 'digest');
  if (digest === undefined)
    throw new OciError('DIGEST_INVALID', 'the digest query parameter is required');
  const body = hasBody(req)
    ? {
        stream: req,
        contentLength: contentLength(req),
        range: parseContentRange(req.headers['content-range']),
      }
    : undefined;
  if (!body) req.resume();
  const blob = await registry.uploads.complete(name, param, digest, body);
  sendEmpty(res, 201, blobCreated(name, blob.digest));
}

/** `GET /v2/<name>/blobs/uploads/<id>` — progress of a session. */
export async function uploadStatus({ res, name, param, registry }: V2Context): Promise<void> {
  const s = await registry.uploads.get(name, param);
  sendEmpty(res, 204, sessionHeaders(name, s));
}

/** `DELETE /v2/<name>/blobs/uploads/<id>` — cancel. */
export async function cancelUpload({ res, name, param, registry }: V2Context): Promise<void> {
  await registry.uploads.cancel(name, param);
  sendEmpty(res, 204, API_VERSION_HEADER);
}

/**
 * `Content-Range: <start>-<end>` (the spec's form; `bytes ` prefixes and `/total` accepted).
 * Malformed, or beyond what a byte offset can be: 416 `BLOB_UPLOAD_INVALID`.
 */
export function parseContentRange(header: string | undefined): ChunkRange | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  const start = Number(m?.[1]);
  const end = Number(m?.[2]);
  if (!m || !Number.isSafeInteger(start) || !Number.isSafeInteger(end))
    throw new OciError('BLOB_UPLOAD_INVALID', 'malformed Content-Range', undefined, 416);
  return { start, end };
}
