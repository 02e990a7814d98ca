import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { InvalidKeyError, InvalidRangeError, NotFoundError, UnavailableError } from './errors';
import { FsLister } from './fs-list';
import {
  closeQuietly,
  fsyncDir,
  FsWriter,
  isCode,
  notFoundOr,
  writerOf,
  writeStream,
} from './fs-write';
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
  private readonly lister: FsLister;
  private readonly writer: FsWriter;

  constructor(opts: FsStoreOptions | string) {
    const o = typeof opts === 'string' ? { root: opts } : opts;
    this.root = path.resolve(o.root);
    this.lister = new FsLister(this.root, TMP);
    this.writer = new FsWriter(
      this.root,
      path.join(this.root, TMP),
      o.staleTempMs ?? 24 * 3600 * 1000,
    );
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
    return this.writer.writeAtomically(
      key,
      target,
      writerOf(body),
      opts?.durable ?? true,
      opts?.tempName,
    );
  }

  /** Streams into a temp file, runs `check`, then fsyncs and renames: no staging object. */
  async putChecked(
    key: string,
    body: Readable,
    check: () => void,
    opts?: PutOptions,
  ): Promise<ObjectInfo> {
    const target = this.pathOf(key);
    return this.writer.writeAtomically(
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
    const parents = Promise.allSettled(
      entries.map((e, i) => this.writer.makeParent(targets[i]!, e.key)),
    );
    const written = await Promise.allSettled(
      entries.map((e) => this.writer.writeTemp(writerOf(e.body, e.check), true)),
    );
    await parents;
    const temps = written.flatMap((w) => (w.status === 'fulfilled' ? [w.value.tmp] : []));
    const failed = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    let placed = 0;
    try {
      if (failed) throw failed.reason;
      for (const [i, w] of written.entries()) {
        const { tmp } = (w as PromiseFulfilledResult<{ tmp: string }>).value;
        await this.writer.place(tmp, targets[i]!, entries[i]!.key);
        placed = i + 1;
      }
    } catch (e) {
      await Promise.all(temps.slice(placed).map((t) => fs.rm(t, { force: true })));
      for (const t of targets.slice(placed)) await this.writer.pruneEmptyDirs(path.dirname(t));
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
    await this.writer.pruneEmptyDirs(path.dirname(file));
  }

  async deletePrefix(prefix: string): Promise<void> {
    const dir = this.pathOf(prefix.replace(/\/$/, ''));
    const st = await fs.lstat(dir).catch(() => undefined);
    if (!st?.isDirectory()) return;
    // Renaming the subtree away first makes it vanish at once, then it is removed at leisure.
    const trash = await this.writer.tempPath();
    try {
      await fs.rename(dir, trash);
    } catch (e) {
      if (isCode(e, 'ENOENT')) return;
      throw e;
    }
    await fs.rm(trash, { recursive: true, force: true });
    await this.writer.pruneEmptyDirs(path.dirname(dir));
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListPage> {
    return this.lister.list(prefix, opts);
  }

  async copy(src: string, dst: string): Promise<void> {
    await this.writer.copyPath(this.pathOf(src), src, this.pathOf(dst), dst);
  }

  async concat(srcs: string[], dst: string): Promise<ObjectInfo> {
    const sources = srcs.map((s) => this.pathOf(s));
    const target = this.pathOf(dst);
    return this.writer.writeAtomically(dst, target, async (fh) => {
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
    await this.writer.commit(from, to, dst, true);
    await this.writer.pruneEmptyDirs(path.dirname(from));
  }

  /** Copies from another fs store (any root, any filesystem); false for other drivers. */
  async copyFrom(
    source: ObjectStore,
    srcKey: string,
    dstKey: string,
    opts?: Pick<PutOptions, 'tempName'>,
  ): Promise<boolean> {
    if (!(source instanceof FsStore)) return false;
    await this.writer.copyPath(
      source.pathOf(srcKey),
      srcKey,
      this.pathOf(dstKey),
      dstKey,
      opts?.tempName,
    );
    return true;
  }

  async presignGet(): Promise<undefined> {
    return undefined;
  }

  async ping(): Promise<void> {
    try {
      await this.writer.ensureReady();
      const st = await fs.stat(this.root);
      if (!st.isDirectory()) throw new Error('not a directory');
      await fs.access(this.writer.tmpDir, fs.constants.W_OK);
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
}
