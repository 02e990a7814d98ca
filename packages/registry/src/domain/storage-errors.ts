import { OciError } from '@meridian/oci';
import { StorageError } from '@meridian/storage';

/**
 * Translates storage failures into what a client should see: the backend down or full is a
 * clean 503 with a clear message; anything else unexpected stays an internal error.
 */
export function toOciError(err: unknown): unknown {
  if (err instanceof OciError) return err;
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
