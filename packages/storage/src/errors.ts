/** Typed storage errors. SDK/OS errors never leave a driver; the base wrapper normalises them. */
export type StorageErrorKind =
  'NotFound' | 'InvalidKey' | 'InvalidRange' | 'Unsupported' | 'Unavailable' | 'Full';

export class StorageError extends Error {
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = `${kind}Error`;
  }
}

export class NotFoundError extends StorageError {
  constructor(readonly key: string) {
    super('NotFound', `object not found: ${key}`);
  }
}
export class InvalidKeyError extends StorageError {
  constructor(key: string, why: string) {
    super('InvalidKey', `invalid key ${JSON.stringify(key.slice(0, 200))}: ${why}`);
  }
}
export class InvalidRangeError extends StorageError {
  constructor(readonly size: number) {
    super('InvalidRange', `range not satisfiable for object of ${size} bytes`);
  }
}
export class UnsupportedError extends StorageError {
  constructor(what: string) {
    super('Unsupported', `unsupported by this driver: ${what}`);
  }
}
/** The backend cannot be reached or failed transiently (5xx, network). */
export class UnavailableError extends StorageError {
  constructor(message: string, cause?: unknown) {
    super('Unavailable', message, { cause });
  }
}
/** The backend is out of space. */
export class StorageFullError extends StorageError {
  constructor(message: string, cause?: unknown) {
    super('Full', message, { cause });
  }
}

/**
 * The body given to a write failed, or delivered more or fewer bytes than declared: the writer's
 * fault (a client that disconnected, a chunk shorter than its range), not the backend's. Nothing
 * was stored. Drivers and `BaseStore` pass it on as it is, never as `UnavailableError`, so the
 * caller can tell a bad request from a storage outage. `reason`: `source` (the body stream failed)
 * or `length` (it ended early, or went on past its declared size).
 */
export class BodyError extends Error {
  constructor(
    readonly reason: 'source' | 'length',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BodyError';
  }
}

export function isNotFound(e: unknown): e is NotFoundError {
  return e instanceof StorageError && e.kind === 'NotFound';
}
