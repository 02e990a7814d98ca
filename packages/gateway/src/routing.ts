/**
 * Which region a request may go to. Reads go to the client's nearest healthy region; everything
 * that belongs to a push goes to the primary, so one push session never mixes regions:
 *
 * - `write`: any method but `GET`/`HEAD`, and upload sessions (even their status `GET`);
 * - `push-read`: a `GET`/`HEAD` of a repository's blob or manifest by a client that is pushing
 *   to it — its bearer token grants `push` there (docker, podman, skopeo and containerd ask
 *   for `pull,push` when they push). A blob `HEAD` is the push's "do you have it already?";
 *   answered by a replica it may say yes to what the primary lacks, or 503 while the primary is
 *   down;
 * - `blob-check`: any other blob `HEAD` (a pusher without a token: auth off, Basic): the
 *   primary while it is healthy, else the nearest healthy region;
 * - `read`: everything else. A login (`/oauth2/token`) is served by every region.
 */
export type RequestKind = 'write' | 'push-read' | 'blob-check' | 'read';

const CONTENT = /^\/v2\/(.+)\/(blobs|manifests)\/([^/]+)$/;

export function classify(method: string, path: string, authorization?: string): RequestKind {
  if (path === '/oauth2/token') return 'read';
  if (method !== 'GET' && method !== 'HEAD') return 'write';
  if (/\/blobs\/uploads(\/|$)/.test(path)) return 'write';
  const m = CONTENT.exec(path);
  if (!m) return 'read';
  if (authorization && pushGranted(authorization, m[1]!)) return 'push-read';
  return m[2] === 'blobs' && method === 'HEAD' ? 'blob-check' : 'read';
}

/** Whether a request must go to the primary: anything that writes, and upload sessions. */
export function isWrite(method: string, path: string): boolean {
  return classify(method, path) === 'write';
}

/**
 * Whether a bearer token's access claim grants `push` on `repository`. The token is only read,
 * not verified: it picks a route, never a permission (the region verifies it). A forged token
 * can only send its own request to the primary, which refuses it.
 */
export function pushGranted(authorization: string, repository: string): boolean {
  if (!authorization.startsWith('Bearer ')) return false;
  const payload = authorization.slice(7).split('.')[1];
  if (!payload || payload.length > 16_384) return false;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      access?: unknown;
    };
    if (!Array.isArray(claims.access)) return false;
    return claims.access.some((e: unknown) => {
      const a = e as { type?: unknown; name?: unknown; actions?: unknown };
      return (
        a.type === 'repository' &&
        a.name === repository &&
        Array.isArray(a.actions) &&
        (a.actions.includes('push') || a.actions.includes('*'))
      );
    });
  } catch {
    return false;
  }
}
