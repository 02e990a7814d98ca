/**
 * OCI distribution error codes as data: the spec's code strings, HTTP statuses and messages.
 * One `OciError` class; the HTTP layer writes `{"errors":[{code,message,detail}]}`.
 *
 * A 4xx body may only carry the spec's fourteen codes ("The code field MUST be one of the
 * following"), so conditions the spec has no code for use the closest one with their own status
 * (an unsatisfiable Range is `SIZE_INVALID` with 416, a bad `n` is `UNSUPPORTED` with 400).
 * `UNAVAILABLE` and `UNKNOWN` (from distribution) only ever go with 5xx statuses.
 */
export const OCI_ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: {
    status: 404,
    message: 'manifest references a manifest or blob unknown to registry',
  },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type OciErrorCode = keyof typeof OCI_ERRORS;

export class OciError extends Error {
  readonly status: number;
  constructor(
    readonly code: OciErrorCode,
    message?: string,
    readonly detail?: unknown,
    status?: number,
  ) {
    super(message ?? OCI_ERRORS[code].message);
    this.name = 'OciError';
    this.status = status ?? OCI_ERRORS[code].status;
  }

  toBody(): { errors: { code: string; message: string; detail?: unknown }[] } {
    const entry: { code: string; message: string; detail?: unknown } = {
      code: this.code,
      message: this.message,
    };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

export function isOciError(e: unknown): e is OciError {
  return e instanceof OciError;
}
