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
   * Moves `src` to `dst` atomically at `dst` (fs: rename; S3: copy then delete). Optional:
   * callers fall back to `copy` + `delete` when a driver lacks it.
   */
  move?(src: string, dst: string): Promise<void>;
  /**
   * Server-side copy from another store when both live on the same backend (e.g. two buckets on
   * one S3 endpoint). Resolves false when not possible, so the caller streams instead.
   */
  copyFrom?(source: ObjectStore, srcKey: string, dstKey: string): Promise<boolean>;
  /** A time-limited direct download URL, or undefined when the backend has none (fs). */
  presignGet(key: string, expiresSeconds: number): Promise<string | undefined>;
  /** Checks the backend is reachable (for `/readyz`). Throws `UnavailableError`. */
  ping(): Promise<void>;
  /** Releases clients/handles. */
  close(): Promise<void>;
}
