import { Readable } from 'node:stream';
import {
  BodyError,
  StorageError,
  StorageFullError,
  UnavailableError,
  isNotFound,
  InvalidKeyError,
} from './errors';
import { validateDirPrefix, validateKey, validatePrefix } from './keys';
import { putChecked, putInOrder } from './object-helpers';
import { recordStorageOperation, storageBytesRead, storageBytesWritten } from './metrics';
import type {
  ByteRange,
  GetResult,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutEntry,
  PutOptions,
} from './object-store';

/**
 * Wraps any driver (distribution's `driver/base`): validates every key once before the driver
 * sees it, turns anything that is not a `StorageError` into `UnavailableError` (ENOSPC/EDQUOT
 * into `StorageFullError`), and records the `meridian_storage_*` metrics. Callers use this,
 * never a bare driver.
 */
export class BaseStore implements ObjectStore {
  readonly name: string;
  private readonly bytesRead;
  private readonly bytesWritten;

  constructor(readonly driver: ObjectStore) {
    this.name = driver.name;
    this.bytesRead = storageBytesRead.labels(this.name);
    this.bytesWritten = storageBytesWritten.labels(this.name);
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    validateKey(key);
    if (range) checkRange(range);
    const result = await this.run('get', () => this.driver.get(key, range));
    const out: GetResult = { ...result, body: this.countReads(result.body) };
    const file = result.file;
    if (file) {
      const counter = this.bytesRead;
      out.file = {
        ...file,
        read: async (buffer, length, position) => {
          const n = await file.read(buffer, length, position).catch((e: unknown) => {
            throw normaliseStorageError(e, this.name, 'get');
          });
          counter.inc(n);
          return n;
        },
      };
    }
    return out;
  }

  async getBytes(key: string): Promise<Buffer> {
    validateKey(key);
    const bytes = await this.run('getBytes', () => this.driver.getBytes(key));
    this.bytesRead.inc(bytes.length);
    return bytes;
  }

  async head(key: string): Promise<ObjectInfo> {
    validateKey(key);
    return this.run('head', () => this.driver.head(key));
  }

  async put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<ObjectInfo> {
    validateKey(key);
    const input = sized(body, opts?.size);
    const info = await this.run('put', () => this.driver.put(key, input, opts));
    this.bytesWritten.inc(info.size);
    return info;
  }

  /** `put` with a check before the object becomes visible (the driver's own, or staged). */
  async putChecked(
    key: string,
    body: Readable,
    check: () => void,
    opts?: PutOptions,
  ): Promise<ObjectInfo> {
    validateKey(key);
    const input = sized(body, opts?.size);
    const driver = this.driver;
    const info = await this.runChecked((guard) =>
      putChecked(driver, key, input, guard(check), opts),
    );
    this.bytesWritten.inc(info.size);
    return info;
  }

  /** Objects visible in order, all durable on return (the driver's own, or one at a time). */
  async putInOrder(entries: PutEntry[]): Promise<ObjectInfo[]> {
    for (const e of entries) validateKey(e.key);
    const driver = this.driver;
    const infos = await this.runChecked((guard) => {
      const checked = entries.map((e) => ({
        ...e,
        body: sized(e.body, e.size),
        check: e.check && guard(e.check),
      }));
      return putInOrder(driver, checked);
    });
    for (const info of infos) this.bytesWritten.inc(info.size);
    return infos;
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    return this.run('delete', () => this.driver.delete(key));
  }

  async deletePrefix(prefix: string): Promise<void> {
    validateDirPrefix(prefix);
    return this.run('deletePrefix', () => this.driver.deletePrefix(prefix));
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix);
    if (opts.limit !== undefined && !(Number.isSafeInteger(opts.limit) && opts.limit > 0)) {
      throw new InvalidKeyError(String(opts.limit), 'list limit must be a positive integer');
    }
    const clean: ListOptions = { ...opts };
    if (clean.delimiter === '') delete clean.delimiter;
    if (clean.cursor === '') delete clean.cursor;
    return this.run('list', () => this.driver.list(prefix, clean));
  }

  async copy(src: string, dst: string): Promise<void> {
    validateKey(src);
    validateKey(dst);
    return this.run('copy', () => this.driver.copy(src, dst));
  }

  async concat(srcs: string[], dst: string): Promise<ObjectInfo> {
    for (const src of srcs) validateKey(src);
    validateKey(dst);
    return this.run('concat', () => this.driver.concat(srcs, dst));
  }

  /** Moves atomically at `dst` where the driver can (fs: rename), else copy + delete. */
  async move(src: string, dst: string): Promise<void> {
    validateKey(src);
    validateKey(dst);
    return this.run('move', async () => {
      if (this.driver.move) return this.driver.move(src, dst);
      await this.driver.copy(src, dst);
      await this.driver.delete(src);
    });
  }

  /**
   * Server-side copy from another store on the same backend; false when the driver cannot (the
   * caller streams instead). `source` may be a `BaseStore`: its driver is what is compared.
   */
  async copyFrom(
    source: ObjectStore,
    srcKey: string,
    dstKey: string,
    opts?: Pick<PutOptions, 'tempName'>,
  ): Promise<boolean> {
    validateKey(srcKey);
    validateKey(dstKey);
    const driver = this.driver;
    if (!driver.copyFrom) return false;
    const from = source instanceof BaseStore ? source.driver : source;
    return this.run('copyFrom', () => driver.copyFrom!(from, srcKey, dstKey, opts));
  }

  async presignGet(key: string, expiresSeconds: number): Promise<string | undefined> {
    validateKey(key);
    return this.run('presignGet', () => this.driver.presignGet(key, expiresSeconds));
  }

  async ping(): Promise<void> {
    return this.run('ping', () => this.driver.ping());
  }

  async close(): Promise<void> {
    return this.run('close', () => this.driver.close());
  }

  /**
   * A `put` whose caller's checks fail with the caller's own error (a digest mismatch, say),
   * not a storage error: `guard` wraps a check so its error is rethrown as it was.
   */
  private async runChecked<T>(
    fn: (guard: (check: () => void) => () => void) => Promise<T>,
  ): Promise<T> {
    let failed: { error: unknown } | undefined;
    const guard = (check: () => void) => () => {
      try {
        check();
      } catch (error) {
        failed = { error };
        throw error;
      }
    };
    try {
      return await this.run('put', () => fn(guard));
    } catch (e) {
      if (failed) throw failed.error;
      throw e;
    }
  }

  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    let status: 'ok' | 'not_found' | 'error' | 'body_error' = 'ok';
    try {
      return await fn();
    } catch (e) {
      const err = normaliseStorageError(e, this.name, operation);
      status = isNotFound(err) ? 'not_found' : err instanceof BodyError ? 'body_error' : 'error';
      throw err;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      recordStorageOperation(this.name, operation, status, seconds);
    }
  }

  /** Passes the body through, counting bytes as they flow; errors become storage errors. */
  private countReads(src: Readable): Readable {
    const counter = this.bytesRead;
    return tap(
      src,
      (chunk) => counter.inc(chunk.length),
      () => undefined,
      (e) => normaliseStorageError(e, this.name, 'get'),
    );
  }
}

/**
 * Maps any error to a `StorageError`, never losing the original (kept as `cause`); a `BodyError`
 * (the writer's body failed, not the backend) stays what it is.
 */
export function normaliseStorageError(
  e: unknown,
  driver: string,
  operation: string,
): StorageError | BodyError {
  if (e instanceof StorageError || e instanceof BodyError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StorageFullError(`${driver} storage is full (${code}) during ${operation}`, e);
  }
  const message = e instanceof Error ? e.message : String(e);
  return new UnavailableError(`${driver} ${operation} failed: ${message}`, e);
}

function checkRange(range: ByteRange): void {
  const { start, end } = range;
  const ok =
    Number.isSafeInteger(start) &&
    start >= 0 &&
    (end === undefined || (Number.isSafeInteger(end) && end >= 0));
  if (!ok) throw new StorageError('InvalidRange', `malformed range ${JSON.stringify(range)}`);
}

/**
 * Checks a declared size; a stream that then delivers more or fewer bytes than declared fails
 * the write (nothing visible).
 */
function sized<T extends Readable | Buffer>(body: T, size: number | undefined): T | Readable {
  if (size !== undefined && !(Number.isSafeInteger(size) && size >= 0)) {
    throw new StorageError('InvalidRange', `invalid declared size ${size}`);
  }
  if (Buffer.isBuffer(body) && size !== undefined && size !== body.length) {
    throw new StorageError('InvalidRange', `body is ${body.length} bytes, declared ${size}`);
  }
  return Buffer.isBuffer(body) || size === undefined ? body : exactLength(body, size);
}

/** Fails the stream if it delivers more or fewer than `size` bytes. */
function exactLength(src: Readable, size: number): Readable {
  let seen = 0;
  return tap(
    src,
    (chunk) => {
      seen += chunk.length;
      if (seen > size)
        throw new BodyError('length', `body is longer than the declared ${size} bytes`);
    },
    () => {
      if (seen !== size)
        throw new BodyError('length', `body ended after ${seen} of the declared ${size} bytes`);
    },
    (e) => e,
  );
}

/**
 * A lazy pass-through of `src` (nothing is read before the consumer reads) that calls `onChunk`
 * per chunk and `onEnd` at the end, either of which may throw to fail the stream. Destroying the
 * result destroys `src`; an error of `src` is mapped by `mapError`.
 */
function tap(
  src: Readable,
  onChunk: (chunk: Buffer) => void,
  onEnd: () => void,
  mapError: (e: unknown) => unknown,
): Readable {
  // An error before the consumer starts reading is kept by the stream and surfaces on first
  // read; this listener only stops it from being an uncaught 'error' event meanwhile.
  src.on('error', () => undefined);
  return Readable.from(
    (async function* () {
      try {
        for await (const chunk of src) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
          onChunk(buf);
          yield buf;
        }
        onEnd();
      } catch (e) {
        throw mapError(e);
      }
    })(),
    { objectMode: false },
  );
}
