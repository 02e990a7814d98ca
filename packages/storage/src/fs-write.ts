import { randomUUID } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidKeyError, NotFoundError, UnsupportedError } from './errors';
import { staleTempsRemoved } from './metrics';
import type { ObjectInfo } from './object-store';
import { isTempName } from './object-store';
import { streamed } from './young-buffers';

/**
 * The fs driver's write machinery: temp files in `<root>/.tmp/` (swept of crash leftovers on
 * first use), written and fsynced, then renamed into place with their parent directories made
 * on the way and pruned again when emptied. `FsStore` maps keys to paths; this does the rest.
 */
export class FsWriter {
  private ready: Promise<void> | undefined;
  /** Directories this process created or wrote into: a hint only (a rename retries on ENOENT). */
  private readonly dirs = new BoundedSet(10_000);

  constructor(
    private readonly root: string,
    readonly tmpDir: string,
    private readonly staleTempMs: number,
  ) {}

  async ensureReady(): Promise<void> {
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
  async tempPath(name?: string): Promise<string> {
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
  async copyPath(
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
  async writeAtomically(
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
  async writeTemp(
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
  async commit(tmp: string, target: string, key: string, durable: boolean): Promise<void> {
    await this.place(tmp, target, key);
    if (durable) await fsyncDir(path.dirname(target));
  }

  /** The rename of `commit`, without the directory fsync. */
  async place(tmp: string, target: string, key: string): Promise<void> {
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
  async makeParent(target: string, key: string, force = false): Promise<void> {
    const dir = path.dirname(target);
    if (!force && this.dirs.has(dir)) return;
    await fs.mkdir(dir, { recursive: true }).catch((err: unknown) => {
      throw isCode(err, 'EEXIST', 'ENOTDIR') ? conflict(key) : err;
    });
    this.dirs.add(dir);
  }

  /** Removes now-empty directories from `dir` up to (not including) the root. */
  async pruneEmptyDirs(dir: string): Promise<void> {
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

export function isCode(e: unknown, ...codes: string[]): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && codes.includes(code);
}

export function notFoundOr(e: unknown, key: string): unknown {
  if (isCode(e, 'ENOENT', 'ENOTDIR', 'EISDIR')) return new NotFoundError(key);
  if (isCode(e, 'ENAMETOOLONG'))
    return new InvalidKeyError(key, 'name too long for the filesystem');
  return e;
}

export function conflict(key: string): UnsupportedError {
  return new UnsupportedError(
    `key ${key} overlaps an existing key or prefix (the fs driver cannot hold both "a" and "a/b")`,
  );
}

/**
 * Writes `body` into a temp file's handle, then runs `check` (before anything is renamed into
 * place); resolves to the bytes written.
 */
export function writerOf(
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
export async function writeStream(body: Readable, fh: FileHandle): Promise<number> {
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
  const writeAll = async (bufs: Buffer[]): Promise<void> => {
    written += await writevFully(fh, bufs, null);
  };
  const stream = new Writable({
    // While one write is at the disk, up to 1 MiB of what arrives meanwhile is gathered into the
    // next (one writev of the socket's chunks as they are: no copy into a larger buffer).
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      writeAll([chunk]).then(() => cb(), cb);
    },
    writev(chunks, cb) {
      writeAll(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
    },
  });
  return { stream, written: () => written };
}

/**
 * Writes every byte of `bufs` at `position` (null: the file's current offset) with `writev`,
 * continuing after a short write; resolves to the bytes written. Counts them as streamed
 * (`streamed`): the buffers are a socket's, dead once written.
 */
export async function writevFully(
  fh: FileHandle,
  bufs: Buffer[],
  position: number | null,
): Promise<number> {
  let total = 0;
  for (let rest = bufs; rest.length > 0;) {
    const n = (await fh.writev(rest, position === null ? undefined : position + total))
      .bytesWritten;
    if (n === 0) throw new Error('the disk accepted no byte of a write');
    total += n;
    streamed(n);
    rest = unwritten(rest, n);
  }
  return total;
}

/** What is left of `bufs` once their first `n` bytes are written. */
function unwritten(bufs: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
  if (i === bufs.length) return [];
  return [bufs[i]!.subarray(n), ...bufs.slice(i + 1)];
}

/** Closes without waiting: for a handle whose close cannot report anything new. */
export function closeQuietly(fh: FileHandle): void {
  fh.close().catch(() => {});
}

export async function fsyncDir(dir: string): Promise<void> {
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
