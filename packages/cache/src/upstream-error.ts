import { OciError } from '@meridian/oci';

/**
 * Why another registry could not be read: `auth` (credentials refused or missing), `not-found`,
 * `rate-limited` (its `429`), `unavailable` (unreachable, timed out, 5xx), `invalid` (an answer
 * that breaks the protocol: a digest mismatch, an unexpected status) or `refused` (the upstream
 * address guard refused the address a request or one of its redirects would reach).
 */
export type UpstreamFailure =
  'auth' | 'not-found' | 'rate-limited' | 'unavailable' | 'invalid' | 'refused';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailure,
    message: string,
    /** The upstream's `Retry-After`, seconds. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  /** The OCI error a client of this registry is given for it. */
  toOci(prefix = ''): OciError {
    const message = `${prefix}${this.message}`;
    switch (this.kind) {
      case 'auth':
      case 'refused':
        return new OciError('DENIED', message);
      case 'not-found':
        return new OciError('MANIFEST_UNKNOWN', message);
      case 'rate-limited':
        return new OciError('TOOMANYREQUESTS', message, undefined, 429);
      default:
        return new OciError('UNAVAILABLE', message, undefined, 503);
    }
  }
}
