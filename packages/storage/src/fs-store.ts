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
import { staleTempsRemoved } from './metrics';
import { validateKey } from './keys';
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
import { isTempName } from './object-store';

export interface FsStoreOptions {
  /** Directory holding the objects; created (with parents) on first use. */
  root: string;
  /** Temp files older than this are swept when the store starts (crash leftovers). Default 24 h. */
  staleTempMs?: number;
}

/** `getBytes` reads objects up to this size in one `read`. */
const SMALL_READ = 64 * 1024;

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
  /** Directories this process created or wrote into: a hint only (a rename retries on ENOENT). */
  private readonly dirs = new BoundedSet(10_000);

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
        file: {
          start,
          length,
          read: async (buffer, n, position) => (await fh.read(buffer, 0, n, position)).bytesRead,
          close: () => fh.close(),
        },
      };
    } finally {
      if (!handedOver) await fh.close();
    }
  }

  /**
   * Small objects (manifests, links, tags, session state) are read with one `read` into a 64 KiB
   * buffer: two trips to the thread pool instead of `readFile`'s open, fstat, read, read, close.
   */
  async getBytes(key: string): Promise<Buffer> {
    const fh = await fs.open(this.pathOf(key), 'r').catch((e: unknown) => {
      throw notFoundOr(e, key);
    });
    let closed = false;
    try {
      const buf = Buffer.allocUnsafe(SMALL_READ);
      // Position null: from (and advancing) the file position, so readFile continues after it.
      const { bytesRead } = await fh.read(buf, 0, SMALL_READ, null);
      if (bytesRead < SMALL_READ) {
        closed = true;
        closeQuietly(fh); // nothing left to learn from close on a read
        return Buffer.from(buf.subarray(0, bytesRead));
      }
      return Buffer.concat([buf, await fh.readFile()]);
    } catch (e) {
      throw notFoundOr(e, key);
    } finally {
      if (!closed) await fh.close();
    }
  }

  async head(key: string): Promise<ObjectInfo> {
    const st = await fs.stat(this.pathOf(key)).catch((e: unknown) => {
      throw notFoundOr(e, key);
    });
    if (!st.isFile()) throw new NotFoundError(key);
    return { key, size: st.size, modified: st.mtime };
  }

  async put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<ObjectInfo> {
    const target = this.pathOf(key);
    return this.writeAtomically(key, target, writerOf(body), opts?.durable ?? true, opts?.tempName);
  }

  /** Streams into a temp file, runs `check`, then fsyncs and renames: no staging object. */
  async putChecked(
    key: string,
    body: Readable,
    check: () => void,
    opts?: PutOptions,
  ): Promise<ObjectInfo> {
    const target = this.pathOf(key);
    return this.writeAtomically(
      key,
      target,
      writerOf(body, check),
      opts?.durable ?? true,
      opts?.tempName,
    );
  }

  /**
   * Every temp file is written and fsynced at once, then they are renamed into place one after
   * the other in the given order, then their directories are fsynced together: the order of
   * visibility is kept, and the fsyncs overlap instead of queueing one after another.
   */
  async putInOrder(entries: PutEntry[]): Promise<ObjectInfo[]> {
    const targets = entries.map((e) => this.pathOf(e.key));
    // Directories are made while the bytes are written (see makeParent); a failure here shows
    // again, with its proper error, in the rename's retry.
    const parents = Promise.allSettled(entries.map((e, i) => this.makeParent(targets[i]!, e.key)));
    const written = await Promise.allSettled(
      entries.map((e) => this.writeTemp(writerOf(e.body, e.check), true)),
    );
    await parents;
    const temps = written.flatMap((w) => (w.status === 'fulfilled' ? [w.value.tmp] : []));
    const failed = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    let placed = 0;
    try {
      if (failed) throw failed.reason;
      for (const [i, w] of written.entries()) {
        const { tmp } = (w as PromiseFulfilledResult<{ tmp: string }>).value;
        await this.place(tmp, targets[i]!, entries[i]!.key);
        placed = i + 1;
      }
    } catch (e) {
      await Promise.all(temps.slice(placed).map((t) => fs.rm(t, { force: true })));
      for (const t of targets.slice(placed)) await this.pruneEmptyDirs(path.dirname(t));
      throw e;
    }
    await Promise.all([...new Set(targets.map((t) => path.dirname(t)))].map(fsyncDir));
    const now = new Date();
    return written.map((w, i) => ({
      key: entries[i]!.key,
      size: (w as PromiseFulfilledResult<{ size: number }>).value.size,
      modified: now,
    }));
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
      let size = 0;
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
        size += await writeStream(src.createReadStream(), fh);
      }
      return size;
    });
  }

  /**
   * fsync, then `rename`: atomic and durable at `dst` (even for a source written with
   * `durable: false`), and `src` disappears in the same step.
   */
  async move(src: string, dst: string): Promise<void> {
    const from = this.pathOf(src);
    const to = this.pathOf(dst);
    // O_RDWR: opening a directory fails (EISDIR), so only a file can be moved.
    const fh = await fs.open(from, 'r+').catch((e: unknown) => {
      throw notFoundOr(e, src);
    });
    try {
      await fh.sync();
    } finally {
      closeQuietly(fh);
    }
    await this.commit(from, to, dst, true);
    await this.pruneEmptyDirs(path.dirname(from));
  }

  /** Copies from another fs store (any root, any filesystem); false for other drivers. */
  async copyFrom(
    source: ObjectStore,
    srcKey: string,
    dstKey: string,
    opts?: Pick<PutOptions, 'tempName'>,
  ): Promise<boolean> {
    if (!(source instanceof FsStore)) return false;
    await this.copyPath(source.pathOf(srcKey), srcKey, this.pathOf(dstKey), dstKey, opts?.tempName);
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

  /**
   * A fresh temp file path. With a stable `name` (see `PutOptions.tempName`), what an earlier
   * write under that name left (`<name>.<uuid>`, a killed copy's bytes) is removed first.
   */
  private async tempPath(name?: string): Promise<string> {
    await this.ensureReady();
    if (!isTempName(name)) return path.join(this.tmpDir, randomUUID());
    const leftovers = (await fs.readdir(this.tmpDir).catch(() => [] as string[])).filter((n) =>
      n.startsWith(`${name}.`),
    );
    await Promise.all(leftovers.map((n) => fs.rm(path.join(this.tmpDir, n), { force: true })));
    if (leftovers.length > 0) staleTempsRemoved.inc({ driver: 'fs' }, leftovers.length);
    return path.join(this.tmpDir, `${name}.${randomUUID()}`);
  }

  /** copyFile to a temp file, fsync, rename into place. */
  private async copyPath(
    from: string,
    src: string,
    to: string,
    dst: string,
    tempName?: string,
  ): Promise<void> {
    const tmp = await this.tempPath(tempName);
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
      await this.commit(tmp, to, dst, true);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Writes a temp file with `write` (which returns the bytes written), fsyncs it when `durable`
   * and renames it to `target`.
   */
  private async writeAtomically(
    key: string,
    target: string,
    write: (fh: FileHandle) => Promise<number>,
    durable = true,
    tempName?: string,
  ): Promise<ObjectInfo> {
    // The directory is made while the bytes are written, not after.
    // A failure to make it shows again, with its proper error, in the rename's retry.
    const parent = this.makeParent(target, key).catch(() => {});
    let written: { tmp: string; size: number };
    try {
      written = await this.writeTemp(write, durable, tempName);
    } catch (e) {
      await parent;
      await this.pruneEmptyDirs(path.dirname(target)); // the directory made ahead, if unused
      throw e;
    }
    const { tmp, size } = written;
    try {
      await parent;
      await this.commit(tmp, target, key, durable);
      return { key, size, modified: new Date() };
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  /** A temp file written by `write` (fsynced when `durable`); removed again if anything fails. */
  private async writeTemp(
    write: (fh: FileHandle) => Promise<number>,
    durable: boolean,
    tempName?: string,
  ): Promise<{ tmp: string; size: number }> {
    const tmp = await this.tempPath(tempName);
    try {
      const fh = await fs.open(tmp, 'wx', 0o644).catch(async (e: unknown) => {
        if (!isCode(e, 'ENOENT')) throw e;
        this.ready = undefined; // the temp dir vanished (root wiped?): recreate it once
        await this.ensureReady();
        return fs.open(tmp, 'wx', 0o644);
      });
      let size: number;
      try {
        size = await write(fh);
        if (durable) await fh.sync();
      } catch (e) {
        await fh.close();
        throw e;
      }
      // After an fsync, close has nothing left to report; without one, it may (NFS).
      if (durable) closeQuietly(fh);
      else await fh.close();
      return { tmp, size };
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Renames `tmp` to `target`, creating parents first unless this process has seen the directory
   * (most keys are written into new directories: a blob, a link, a tag), and again if a delete
   * pruned them meanwhile. With `durable`, the directory is fsynced so the rename survives a crash.
   */
  private async commit(tmp: string, target: string, key: string, durable: boolean): Promise<void> {
    await this.place(tmp, target, key);
    if (durable) await fsyncDir(path.dirname(target));
  }

  /** The rename of `commit`, without the directory fsync. */
  private async place(tmp: string, target: string, key: string): Promise<void> {
    await this.makeParent(target, key);
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.rename(tmp, target);
        break;
      } catch (e) {
        if (isCode(e, 'ENOENT') && attempt < 5) {
          await this.makeParent(target, key, true);
          continue;
        }
        if (isCode(e, 'EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EEXIST')) throw conflict(key);
        if (isCode(e, 'ENAMETOOLONG')) throw notFoundOr(e, key);
        throw e;
      }
    }
  }

  /**
   * Creates `target`'s directory unless this process has seen it (or `force`). Safe to do ahead
   * of the write: listings skip directories that hold no object, and a prune that removes it
   * meanwhile only makes the rename retry.
   */
  private async makeParent(target: string, key: string, force = false): Promise<void> {
    const dir = path.dirname(target);
    if (!force && this.dirs.has(dir)) return;
    await fs.mkdir(dir, { recursive: true }).catch((err: unknown) => {
      throw isCode(err, 'EEXIST', 'ENOTDIR') ? conflict(key) : err;
    });
    this.dirs.add(dir);
  }

  /** Removes now-empty directories from `dir` up to (not including) the root. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.startsWith(this.root + path.sep) && dir !== this.tmpDir) {
      try {
        await fs.rmdir(dir);
      } catch {
        return; // not empty (or gone): stop
      }
      this.dirs.delete(dir);
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
 * Writes `body` into a temp file's handle, then runs `check` (before anything is renamed into
 * place); resolves to the bytes written.
 */
function writerOf(
  body: Readable | Buffer,
  check?: () => void,
): (fh: FileHandle) => Promise<number> {
  return async (fh) => {
    let size: number;
    if (Buffer.isBuffer(body)) {
      await fh.writeFile(body);
      size = body.length;
    } else size = await writeStream(body, fh);
    check?.();
    return size;
  };
}

/** Streams `body` into `fh`; resolves to the bytes written. */
async function writeStream(body: Readable, fh: FileHandle): Promise<number> {
  const sink = fileSink(fh);
  await pipeline(body, sink.stream);
  return sink.written();
}

/** A set that forgets everything when it reaches `max` entries (a cache of hints). */
class BoundedSet {
  private readonly items = new Set<string>();
  constructor(private readonly max: number) {}
  has(x: string): boolean {
    return this.items.has(x);
  }
  add(x: string): void {
    if (this.items.size >= this.max) this.items.clear();
    this.items.add(x);
  }
  delete(x: string): void {
    this.items.delete(x);
  }
}

/**
 * A Writable appending to an open FileHandle without taking it over. (`fh.createWriteStream`
 * with `autoClose: false` keeps a reference that makes a later `fh.close()` hang forever.)
 */
function fileSink(fh: FileHandle): { stream: Writable; written: () => number } {
  let written = 0;
  const writeAll = async (buf: Buffer): Promise<void> => {
    for (let off = 0; off < buf.length;) {
      off += (await fh.write(buf, off, buf.length - off, null)).bytesWritten;
    }
    written += buf.length;
  };
  const stream = new Writable({
    // While one write is at the disk, up to 1 MiB of what arrives meanwhile is gathered into the
    // next (writev): fewer, larger writes than one per 64 KiB socket read.
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      writeAll(chunk).then(() => cb(), cb);
    },
    writev(chunks, cb) {
      writeAll(Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => cb(), cb);
    },
  });
  return { stream, written: () => written };
}

/** Closes without waiting: for a handle whose close cannot report anything new. */
function closeQuietly(fh: FileHandle): void {
  fh.close().catch(() => {});
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      closeQuietly(fh);
    }
  } catch {
    // Best effort: some filesystems refuse fsync on a directory.
  }
}
