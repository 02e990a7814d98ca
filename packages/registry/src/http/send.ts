import type { ServerResponse } from 'node:http';
import { OciError } from '@meridian/oci';
import type { Logger } from 'pino';

/** Headers every distribution API response carries. */
export const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | number> = {},
  contentType = 'application/json',
): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { ...headers, 'Content-Type': contentType, 'Content-Length': data.length });
  res.end(res.req.method === 'HEAD' ? undefined : data);
}

export function sendEmpty(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | number> = {},
): void {
  res.writeHead(status, { ...headers, 'Content-Length': 0 });
  res.end();
}

/**
 * Writes an error as the spec's JSON body. Unknown errors become `500 UNKNOWN` with the request
 * id (the detail goes to the log, never to the client). After headers were sent, the only honest
 * signal left is to abort the connection.
 */
export function sendError(res: ServerResponse, err: unknown, log: Logger, requestId: string): void {
  const oci =
    err instanceof OciError
      ? err
      : new OciError('UNKNOWN', `internal error; request id ${requestId}`);
  if (!(err instanceof OciError) || oci.status >= 500) log.error({ err }, 'request failed');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = { ...API_VERSION_HEADER };
  if (oci.status === 416 && isSized(oci.detail))
    headers['Content-Range'] = `bytes */${oci.detail.size}`;
  if (oci.status === 413) headers.Connection = 'close';
  // RFC 9110 §15.5.6: every 405 says which methods the target accepts (possibly none).
  const allow = (oci.detail as { allow?: unknown } | undefined)?.allow;
  if (oci.status === 405 && Array.isArray(allow)) headers.Allow = allow.join(', ');
  const retryAfter = (oci.detail as { retryAfter?: unknown } | undefined)?.retryAfter;
  if (oci.status === 429 && typeof retryAfter === 'number')
    headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfter)));
  sendJson(res, oci.status, oci.toBody(), headers);
}

function isSized(v: unknown): v is { size: number } {
  return typeof v === 'object' && v !== null && typeof (v as { size?: unknown }).size === 'number';
}
