import { BodyError, NotFoundError, StorageError, UnavailableError } from './errors';

/** HTTP status of an SDK error, if the server answered. */
export function s3Status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** S3 error code (`NoSuchKey`, `SlowDown`, ...) or the JS error name. */
export function s3ErrorName(e: unknown): string {
  const err = e as { Code?: unknown; name?: unknown } | null;
  if (typeof err?.Code === 'string') return err.Code;
  if (typeof err?.name === 'string') return err.name;
  return 'UnknownError';
}

/**
 * Maps an SDK error to a storage error; SDK errors never leave the S3 driver. A 404 is
 * `NotFoundError(missingKey)` when the operation names one object; `NoSuchBucket`, 5xx,
 * throttling, network and every other failure become `UnavailableError`. The message carries
 * the error code, status and request id, never the request (so never a credential), and the
 * SDK error is not kept as the cause for the same reason. A `BodyError` (the caller's body
 * failed) passes through as it is.
 */
export function mapS3Error(
  e: unknown,
  what: string,
  missingKey?: string,
): StorageError | BodyError {
  if (e instanceof StorageError || e instanceof BodyError) return e;
  const status = s3Status(e);
  const name = s3ErrorName(e);
  if (
    missingKey !== undefined &&
    name !== 'NoSuchBucket' &&
    (status === 404 || name === 'NoSuchKey' || name === 'NotFound')
  ) {
    return new NotFoundError(missingKey);
  }
  const requestId = (e as { $metadata?: { requestId?: string } } | null)?.$metadata?.requestId;
  const message = e instanceof Error && e.message && e.message !== name ? `: ${e.message}` : '';
  return new UnavailableError(
    `s3 ${what}${missingKey !== undefined ? ` ${missingKey}` : ''} failed: ${name}` +
      `${status ? ` (HTTP ${status})` : ''}${requestId ? ` [request ${requestId}]` : ''}${message}`,
  );
}
