import type { Readable } from 'node:stream';

/** Metadata of a stored object. */
export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  /** Inclusive; absent means to the end of the object. */
  end?: number;
}

export interface GetResult {
  body: Readable;
  /** Size of the whole object. */
  size: number;
  /** Bytes the body will deliver (the range length, or `size`). */
  length: number;
  /**
   * The same bytes as a region of an open file, where the driver has one (fs): a sender may read
   * it into buffers of its own, reused, instead of consuming `body` (whose fresh buffer per read
   * costs more in page faults than the copy). Use one or the other: whoever uses `file` closes it
   * and leaves `body` alone.
   */
  file?: FileRegion;
}

/** `length` bytes of an open file from offset `start` (see `GetResult.file`). */
export interface FileRegion {
  start: number;
  length: number;
  /** Reads up to `length` bytes at absolute `position` into `buffer`; resolves to bytes read. */
  read(buffer: Buffer, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface ListOptions {
  /** Group keys by this delimiter into `prefixes` (S3 common prefixes). */
  delimiter?: string;
  /** Opaque continuation token returned by the previous page. */
  cursor?: string;
  /** Page size; drivers may return fewer. Default 1000. */
  limit?: number;
}

export interface ListPage {
  /** Objects directly matched, sorted by key (byte order). */
  objects: ObjectInfo[];
  /** Common prefixes (ending with the delimiter), sorted. */
  prefixes: string[];
  /** Present when there are more results. */
  cursor?: string;
}

export interface PutOptions {
  /** Expected length; lets drivers do a single PUT instead of multipart. */
  size?: number;
  contentType?: string;
  /**
   * Default true: the object survives a machine crash once `put` resolves (fs: the file and its
   * directory are fsynced). False is for scratch objects that are cheap to lose, such as upload
   * session state and chunks: they are still atomic and survive a process crash, but a power loss
   * may take them. `move` makes its destination durable whatever its source was written with.
   */
  durable?: boolean;
  /**
   * A stable name for the write's temporary object (`[A-Za-z0-9._-]`, at most 128 characters),
   * for writes that a crashed process may repeat (a replication copy). The driver first removes
   * what an earlier write under the same name left behind — a temp file, a staging object, an
   * incomplete multipart upload — so a crash-looping copier never piles up full-size leftovers.
   * Only for writers that a lock keeps apart: a concurrent write under the same name may lose
   * its temp object and fail (never publish wrong bytes). Default: a random name.
   */
  tempName?: string;
}

/** Whether `tempName` is usable as a temp object's name. */
export function isTempName(name: string | undefined): name is string {
  return name !== undefined && /^[A-Za-z0-9._-]{1,128}$/.test(name) && !/^\.+$/.test(name);
}

/** One object of `putInOrder`. */
export interface PutEntry {
  key: string;
  body: Readable | Buffer;
  /** Runs after the last byte and before the object is visible (see `putChecked`). */
  check?: () => void;
  /** Expected length (as `PutOptions.size`). */
  size?: number;
}

/**
 * The object-store driver interface every backend implements. Keys are `/`-separated,
 * validated by `validateKey` (no `.`/`..`/empty segments), so traversal is impossible.
 * All writes are atomic: a reader sees the old object, the new object, or nothing — never a
 * partial one, even if the writer's stream fails midway or the process dies.
 */
export interface ObjectStore {
  /** Short driver name for metrics and logs (`fs`, `s3`). */
  readonly name: string;
  /** Reads an object (or a range). Throws `NotFoundError`, `InvalidRangeError`. */
  get(key: string, range?: ByteRange): Promise<GetResult>;
  /** Reads a small object whole. Throws `NotFoundError`. */
  getBytes(key: string): Promise<Buffer>;
  /** Throws `NotFoundError`. */
  head(key: string): Promise<ObjectInfo>;
  /** Writes atomically from a buffer or a stream; a stream error leaves nothing visible. */
  put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<ObjectInfo>;
  /**
   * Like `put`, but `check` runs after the last byte is written and before the object becomes
   * visible (to verify a digest or a length the caller computed while the bytes streamed); when it
   * throws, nothing is visible at `key` and the call rejects with its error. Optional for drivers:
   * `BaseStore` (and `putChecked` in object-helpers) stage the object under `Layout.staging` and
   * move it into place for a driver without it.
   */
  putChecked?(
    key: string,
    body: Readable,
    check: () => void,
    opts?: PutOptions,
  ): Promise<ObjectInfo>;
  /**
   * Writes several objects that become visible one after another in the given order (each
   * atomically, as `put`), all durable when the call resolves. When an entry fails (its stream,
   * its `check`), the entries after it are not made visible; those before it may be. Optional
   * for drivers: `BaseStore` falls back to one `put`/`putChecked` after another.
   */
  putInOrder?(entries: PutEntry[]): Promise<ObjectInfo[]>;
  /** Deletes one object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Deletes every object under `prefix` (which must end with `/`). */
  deletePrefix(prefix: string): Promise<void>;
  /** Lists one page under `prefix`. */
  list(prefix: string, opts?: ListOptions): Promise<ListPage>;
  /** Server-side copy where the backend can; atomic at `dst`. Throws `NotFoundError`. */
  copy(src: string, dst: string): Promise<void>;
  /**
   * Writes the concatenation of `srcs` to `dst` atomically (server-side where possible, e.g.
   * S3 UploadPartCopy when every part but the last is ≥ 5 MiB). Sources are left in place.
   */
  concat(srcs: string[], dst: string): Promise<ObjectInfo>;
  /**
   * Moves `src` to `dst` atomically and durably at `dst` (fs: fsync, rename; S3: copy then
   * delete), even when `src` was written with `durable: false`. Optional:
   * callers fall back to `copy` + `delete` when a driver lacks it.
   */
  move?(src: string, dst: string): Promise<void>;
  /**
   * Server-side copy from another store when both live on the same backend (e.g. two buckets on
   * one S3 endpoint). Resolves false when not possible, so the caller streams instead.
   * `opts.tempName` as for `put`.
   */
  copyFrom?(
    source: ObjectStore,
    srcKey: string,
    dstKey: string,
    opts?: Pick<PutOptions, 'tempName'>,
  ): Promise<boolean>;
  /** A time-limited direct download URL, or undefined when the backend has none (fs). */
  presignGet(key: string, expiresSeconds: number): Promise<string | undefined>;
  /** Checks the backend is reachable (for `/readyz`). Throws `UnavailableError`. */
  ping(): Promise<void>;
  /** Releases clients/handles. */
  close(): Promise<void>;
}
