import { randomUUID } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  InvalidKeyError,
  InvalidRangeError,
  NotFoundError,
  UnavailableError,
  UnsupportedError,
} from './errors';
import { FsLister } from './fs-list';
import { validateKey } from './keys';
import type {
  ByteRange,
  GetResult,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from './object-store';

export interface FsStoreOptions {
  /** Directory holding the objects; created (with parents) on first use. */
  root: string;
  /** Temp files older than this are swept when the store starts (crash leftovers). Default 24 h. */
  staleTempMs?: number;
}

/** Temp files live here, inside the root so a rename into place never crosses filesystems. */
const TMP = '.tmp';

/**
 * Filesystem driver: key `a/b/c` is the file `<root>/a/b/c`. Every write goes to a temp file
 * in `<root>/.tmp/`, is fsynced, then renamed into place, so readers see the old object, the
 * new one, or nothing. Listing emulates S3 (byte order, delimiter, cursor). A key cannot also
 * be a "directory" of other keys (`a` and `a/b`): such a write throws `UnsupportedError`.
 */
export class FsStore implements ObjectStore {
  readonly name = 'fs';
  readonly root: string;
  private readonly tmpDir: string;
  private readonly staleTempMs: number;
  private ready: Promise<void> | undefined;
  private readonly lister: FsLister;

  constructor(opts: FsStoreOptions | string) {
    const o = typeof opts === 'string' ? { root: opts } : opts;
    this.root = path.resolve(o.root);
    this.tmpDir = path.join(this.root, TMP);
    this.staleTempMs = o.staleTempMs ?? 24 * 3600 * 1000;
    this.lister = new FsLister(this.root, TMP);
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    const file = this.pathOf(key);
    const fh = await fs.open(file, 'r').catch((e: unknown) => {
      throw notFoundOr(e, key);
    });
    let handedOver = false;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new NotFoundError(key);
      const size = st.size;
      let start = 0;
      let end = size - 1;
      if (range) {
        start = range.start;
        if (range.end !== undefined && range.end < start) throw new InvalidRangeError(size);
        if (size > 0 && start >= size) throw new InvalidRangeError(size);
        end = Math.min(range.end ?? size - 1, size - 1);
      }
      const length = Math.max(0, end - start + 1);
      if (length === 0) return { body: Readable.from([], { objectMode: false }), size, length };
      handedOver = true;
      // 1 MiB reads: 64 KiB ones leave the event loop waiting on one small read after another.
      return {
        body: fh.createReadStream({ start, end, highWaterMark: 1024 * 1024 }),
        size,
        length,
      };
    } finally {
      if (!handedOver) await fh.close();
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.pathOf(key));
    } catch (e) {
      throw notFoundOr(e, key);
    }
  }

  async head(key: string): Promise<ObjectInfo> {
    const st = await fs.stat(this.pathOf(key)).catch((e: unknown) => {
      throw notFoundOr(e, key);
    });
    if (!st.isFile()) throw new NotFoundError(key);
    return { key, size: st.size, modified: st.mtime };
  }

  async put(key: string, body: Readable | Buffer, _opts?: PutOptions): Promise<ObjectInfo> {
    const target = this.pathOf(key);
    return this.writeAtomically(key, target, async (fh) => {
      if (Buffer.isBuffer(body)) await fh.writeFile(body);
      else await pipeline(body, fileSink(fh));
    });
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await fs.unlink(file);
    } catch (e) {
      if (isCode(e, 'ENOENT', 'ENOTDIR', 'EISDIR')) return;
      throw e;
    }
    await this.pruneEmptyDirs(path.dirname(file));
  }

  async deletePrefix(prefix: string): Promise<void> {
    const dir = this.pathOf(prefix.replace(/\/$/, ''));
    const st = await fs.lstat(dir).catch(() => undefined);
    if (!st?.isDirectory()) return;
    // Renaming the subtree away first makes it vanish at once, then it is removed at leisure.
    const trash = await this.tempPath();
    try {
      await fs.rename(dir, trash);
    } catch (e) {
      if (isCode(e, 'ENOENT')) return;
      throw e;
    }
    await fs.rm(trash, { recursive: true, force: true });
    await this.pruneEmptyDirs(path.dirname(dir));
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListPage> {
    return this.lister.list(prefix, opts);
  }

  async copy(src: string, dst: string): Promise<void> {
    await this.copyPath(this.pathOf(src), src, this.pathOf(dst), dst);
  }

  async concat(srcs: string[], dst: string): Promise<ObjectInfo> {
    const sources = srcs.map((s) => this.pathOf(s));
    const target = this.pathOf(dst);
    return this.writeAtomically(dst, target, async (fh) => {
      for (const [i, file] of sources.entries()) {
        const key = srcs[i] ?? '';
        const src = await fs.open(file, 'r').catch((e: unknown) => {
          throw notFoundOr(e, key);
        });
        const st = await src.stat().catch(async (e: unknown) => {
          await src.close();
          throw e;
        });
        if (!st.isFile()) {
          await src.close();
          throw new NotFoundError(key);
        }
        await pipeline(src.createReadStream(), fileSink(fh));
      }
    });
  }

  /** `rename`: atomic at `dst`, and `src` disappears in the same step. */
  async move(src: string, dst: string): Promise<void> {
    const from = this.pathOf(src);
    const to = this.pathOf(dst);
    const st = await fs.stat(from).catch((e: unknown) => {
      throw notFoundOr(e, src);
    });
    if (!st.isFile()) throw new NotFoundError(src);
    await this.commit(from, to, dst);
    await this.pruneEmptyDirs(path.dirname(from));
  }

  /** Copies from another fs store (any root, any filesystem); false for other drivers. */
  async copyFrom(source: ObjectStore, srcKey: string, dstKey: string): Promise<boolean> {
    if (!(source instanceof FsStore)) return false;
    await this.copyPath(source.pathOf(srcKey), srcKey, this.pathOf(dstKey), dstKey);
    return true;
  }

  async presignGet(): Promise<undefined> {
    return undefined;
  }

  async ping(): Promise<void> {
    try {
      await this.ensureReady();
      const st = await fs.stat(this.root);
      if (!st.isDirectory()) throw new Error('not a directory');
      await fs.access(this.tmpDir, fs.constants.W_OK);
    } catch (e) {
      throw new UnavailableError(
        `fs root ${this.root} unusable: ${e instanceof Error ? e.message : String(e)}`,
        e,
      );
    }
  }

  async close(): Promise<void> {}

  /** Key → absolute path. Re-validates: the driver is safe even without `BaseStore`. */
  private pathOf(key: string): string {
    validateKey(key);
    if (key === TMP || key.startsWith(`${TMP}/`)) {
      throw new InvalidKeyError(key, `"${TMP}" is reserved by the fs driver`);
    }
    return path.join(this.root, ...key.split('/'));
  }

  private async ensureReady(): Promise<void> {
    this.ready ??= fs.mkdir(this.tmpDir, { recursive: true }).then(
      () => void this.sweepTemp().catch(() => undefined),
      (e: unknown) => {
        this.ready = undefined;
        throw e;
      },
    );
    return this.ready;
  }

  /** Removes temp files left by a crashed process (old enough not to be in use). */
  private async sweepTemp(): Promise<void> {
    const cutoff = Date.now() - this.staleTempMs;
    for (const name of await fs.readdir(this.tmpDir)) {
      const p = path.join(this.tmpDir, name);
      const st = await fs.lstat(p).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) await fs.rm(p, { recursive: true, force: true });
    }
  }

  private async tempPath(): Promise<string> {
    await this.ensureReady();
    return path.join(this.tmpDir, randomUUID());
  }

  /** copyFile to a temp file, fsync, rename into place. */
  private async copyPath(from: string, src: string, to: string, dst: string): Promise<void> {
    const tmp = await this.tempPath();
    try {
      await fs.copyFile(from, tmp).catch((e: unknown) => {
        throw notFoundOr(e, src);
      });
      const fh = await fs.open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.commit(tmp, to, dst);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  /** Writes a temp file with `write`, fsyncs it and renames it to `target`. */
  private async writeAtomically(
    key: string,
    target: string,
    write: (fh: FileHandle) => Promise<void>,
  ): Promise<ObjectInfo> {
    const tmp = await this.tempPath();
    try {
      const fh = await fs.open(tmp, 'wx', 0o644).catch(async (e: unknown) => {
        if (!isCode(e, 'ENOENT')) throw e;
        this.ready = undefined; // the temp dir vanished (root wiped?): recreate it once
        await this.ensureReady();
        return fs.open(tmp, 'wx', 0o644);
      });
      let size: number;
      let modified: Date;
      try {
        await write(fh);
        await fh.sync();
        const st = await fh.stat();
        size = st.size;
        modified = st.mtime;
      } finally {
        await fh.close();
      }
      await this.commit(tmp, target, key);
      return { key, size, modified };
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  /** Renames `tmp` to `target`, creating parents (again, if a delete pruned them meanwhile). */
  private async commit(tmp: string, target: string, key: string): Promise<void> {
    const dir = path.dirname(target);
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.rename(tmp, target);
        break;
      } catch (e) {
        if (isCode(e, 'ENOENT') && attempt < 5) {
          await fs.mkdir(dir, { recursive: true }).catch((err: unknown) => {
            throw isCode(err, 'EEXIST', 'ENOTDIR') ? conflict(key) : err;
          });
          continue;
        }
        if (isCode(e, 'EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EEXIST')) throw conflict(key);
        if (isCode(e, 'ENAMETOOLONG')) throw notFoundOr(e, key);
        throw e;
      }
    }
    await fsyncDir(dir);
  }

  /** Removes now-empty directories from `dir` up to (not including) the root. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.startsWith(this.root + path.sep) && dir !== this.tmpDir) {
      try {
        await fs.rmdir(dir);
      } catch {
        return; // not empty (or gone): stop
      }
      dir = path.dirname(dir);
    }
  }
}

function isCode(e: unknown, ...codes: string[]): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && codes.includes(code);
}

function notFoundOr(e: unknown, key: string): unknown {
  if (isCode(e, 'ENOENT', 'ENOTDIR', 'EISDIR')) return new NotFoundError(key);
  if (isCode(e, 'ENAMETOOLONG'))
    return new InvalidKeyError(key, 'name too long for the filesystem');
  return e;
}

function conflict(key: string): UnsupportedError {
  return new UnsupportedError(
    `key ${key} overlaps an existing key or prefix (the fs driver cannot hold both "a" and "a/b")`,
  );
}

/**
 * A Writable appending to an open FileHandle without taking it over. (`fh.createWriteStream`
 * with `autoClose: false` keeps a reference that makes a later `fh.close()` hang forever.)
 */
function fileSink(fh: FileHandle): Writable {
  const writeAll = async (buf: Buffer): Promise<void> => {
    for (let off = 0; off < buf.length;) {
      off += (await fh.write(buf, off, buf.length - off, null)).bytesWritten;
    }
  };
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      writeAll(chunk).then(() => cb(), cb);
    },
    writev(chunks, cb) {
      writeAll(Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => cb(), cb);
    },
  });
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Best effort: some filesystems refuse fsync on a directory.
  }
}
