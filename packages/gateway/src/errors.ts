import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { OciError } from '@meridian/oci';

/**
 * The gateway's one error writer: the spec's `{"errors":[{code,message,detail}]}` with the code's
 * status, as every Meridian process answers. After the head was sent the only honest signal left
 * is to abort the connection.
 */
export function sendError(res: ServerResponse, err: unknown): void {
  const oci = err instanceof OciError ? err : new OciError('UNKNOWN', 'internal gateway error');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(JSON.stringify(oci.toBody()));
  res.writeHead(oci.status, {
    'Content-Type': 'application/json',
    'Content-Length': body.length,
    'Docker-Distribution-API-Version': 'registry/2.0',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * Writes go to the primary only, and it could not be reached: the registry is read-only until it
 * is back. `405 UNSUPPORTED`, as a read-only registry (and a replica) answers a write — not a
 * 503, whose body clients such as skopeo and podman never show: the user must read why.
 */
export function primaryUnavailable(): OciError {
  return new OciError(
    'UNSUPPORTED',
    PRIMARY_UNAVAILABLE + '; pushes are refused until it is back (pulls are still served)',
    undefined,
    405,
  );
}

export const PRIMARY_UNAVAILABLE = 'the primary region is unavailable';

/**
 * The server's `clientError` handler: a request Node cannot parse (or that timed out) gets the
 * same OCI error JSON as every other error, with the status Node would have used.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, reason, oci] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          new OciError('UNSUPPORTED', 'request headers too large', undefined, 431),
        ]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', new OciError('UNSUPPORTED', 'request timed out', undefined, 408)]
        : [
            400,
            'Bad Request',
            new OciError('UNSUPPORTED', 'malformed HTTP request', undefined, 400),
          ];
  const body = JSON.stringify(oci.toBody());
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
