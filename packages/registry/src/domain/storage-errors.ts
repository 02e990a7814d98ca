import { OciError } from '@meridian/oci';
import { BodyError, StorageError } from '@meridian/storage';

/**
 * Translates storage failures into what a client should see: the backend down or full is a
 * clean 503 with a clear message; a request body that failed or did not match its declared size
 * is the client's mistake (400, never a storage outage); anything else unexpected stays an
 * internal error.
 */
export function toOciError(err: unknown): unknown {
  if (err instanceof OciError) return err;
  if (err instanceof BodyError) {
    return err.reason === 'length'
      ? new OciError(
          'BLOB_UPLOAD_INVALID',
          `the chunk does not match its Content-Range: ${err.message}`,
        )
      : new OciError(
          'BLOB_UPLOAD_INVALID',
          'the client closed the connection before the end of the body',
        );
  }
  if (err instanceof StorageError) {
    switch (err.kind) {
      case 'Unavailable':
        return new OciError('UNAVAILABLE', 'storage backend is unavailable; retry later');
      case 'Full':
        return new OciError('UNAVAILABLE', 'storage backend is out of space', undefined, 507);
      case 'InvalidKey':
        return new OciError('NAME_INVALID', 'invalid name or reference');
      default:
        return err;
    }
  }
  return err;
}

/** Runs `fn`, translating storage errors for the HTTP layer. */
export async function translated<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toOciError(err);
  }
}
