import { randomUUID } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDigester, type Digest } from '@meridian/oci';
import { writevFully, type FileRegion } from '@meridian/storage';

/**
 * What a response sends first: the blob route sends a `region` in reads of this size, so a
 * response's first byte waits for this many (`ready`).
 */
export const FIRST_SEND = 1024 * 1024;
/** Bytes a reader asks of the spool at a time (and the most one reader holds in memory). */
const CHUNK = 256 * 1024;
/** Bytes the spool buffers from the source while a write is in flight (written as one write). */
const BATCH = 1024 * 1024;

export interface BlobFillOptions {
  /** The blob: the bytes must hash to it, or every reader fails. */
  digest: Digest;
  /** Bytes the source must deliver (the whole blob); ending early is a failure. */
  length: number;
  /** The source delivering no byte for this long fails the fill. */
  stallTimeoutMs: number;
  /** Where the spool file is made (and at once unlinked). Default `os.tmpdir()`. */
  spoolDir?: string;
}

/**
 * One blob arriving from an upstream (the primary, a cache rule's registry) that any number of
 * readers stream from while it arrives — a herd of pulls, the region's own copy, an import —
 * each at its own pace, from the first byte, never buffering the blob in memory.
 *
 * The source is written to a spool file (unlinked as soon as it is opened, so a crash leaves
 * nothing behind; it lives while someone holds it) and hashed as it passes. A reader reads what
 * is written so far, then waits for more; it ends only once every byte arrived **and** hashed to
 * the digest, so no reader ever sees a clean end of wrong or short bytes. The source failing,
 * ending short, stalling for `stallTimeoutMs` or hashing wrong destroys every reader with that
 * error — a pull is cut, it never hangs. A reader going away (a client disconnecting) changes
 * nothing for the others: the source is paced by the spool's disk, not by any reader.
 */
export class BlobFill {
  /** Bytes received (readable) so far. */
  received = 0;
  /** Bytes on the spool's disk so far (the rest of `received` is in `recent`). */
  private written = 0;
  /** Every byte arrived and hashed to the digest. */
  verified = false;
  /** Why the fill failed, once it did. */
  error: Error | undefined;
  /** Settles when the fill does: resolves verified, rejects with the failure. Never unhandled. */
  readonly done: Promise<void>;
  private refs = 1; // the fill itself, until it settles
  private closed = false;
  private stopWhenUnread = false;
  private readonly waiters = new Set<() => void>();
  private readonly source: Readable;
  /**
   * The chunks of the batch being written and of the one written before it, as the source sent
   * them: readers that keep up (a herd) are served from memory, as soon as the bytes arrive,
   * without waiting for the disk or reading the file back. Bounded: two batches per fill.
   */
  private recent: { start: number; bytes: Buffer }[] = [];

  private constructor(
    private readonly handle: FileHandle,
    source: Readable,
    readonly opts: BlobFillOptions,
  ) {
    this.source = source;
    this.done = this.pump();
    this.done.catch(() => {});
  }

  /** Opens a spool and starts pulling `source` into it. */
  static async start(source: Readable, opts: BlobFillOptions): Promise<BlobFill> {
    const path = join(opts.spoolDir ?? tmpdir(), `meridian-fill-${randomUUID()}`);
    let handle: FileHandle;
    try {
      handle = await open(path, 'w+', 0o600);
      await unlink(path);
    } catch (err) {
      source.destroy();
      throw err;
    }
    return new BlobFill(handle, source, opts);
  }

  /** Whether a new reader can still attach (the fill has not failed or been released). */
  get joinable(): boolean {
    return !this.error && !this.closed;
  }

  /** Fails the fill (and every reader) with `err`, unless it already settled. */
  abort(err: Error): void {
    if (this.verified || this.error) return;
    this.source.destroy(err);
  }

  /**
   * From now on the fill stops (fails) as soon as no reader is attached: nobody wants the bytes
   * any more (e.g. the region's own copy was dropped and every client went away).
   */
  stopWhenNobodyReads(): void {
    this.stopWhenUnread = true;
    if (this.refs <= 1 && !this.verified) this.abort(new Error('nobody reads the blob any more'));
  }

  /**
   * A stream of the blob's bytes `start`..`end` (inclusive; default the whole blob), from the
   * spool: what has arrived at once, the rest as it arrives. `onRead` is told each position
   * reached; with `endAfter`, the stream's last byte waits for it too (e.g. until the blob
   * landed in the store, so a pull that completed can be repeated from there). Throws if the
   * fill is not `joinable`.
   */
  reader(
    range: { start: number; end?: number } = { start: 0 },
    opts: { onRead?: (pos: number) => void; endAfter?: Promise<unknown>; lazy?: boolean } = {},
  ): Readable {
    if (!this.joinable) throw this.error ?? new Error('the fill is over');
    // A lazy reader holds the spool only once it is read (a `body` next to a `region`).
    let held = false;
    const hold = (): boolean => {
      if (held) return true;
      if (!this.joinable) return false;
      this.refs++;
      held = true;
      return true;
    };
    if (!opts.lazy) hold();
    const { onRead } = opts;
    let endable = opts.endAfter === undefined;
    void opts.endAfter?.finally(() => {
      endable = true;
      if (held) wake();
    });
    let pos = range.start;
    const stop = (range.end ?? this.opts.length - 1) + 1;
    let reading = false;
    let again = false;
    const out = new Readable({
      highWaterMark: CHUNK,
      read: () => void pump(),
      destroy: (err, cb) => {
        this.waiters.delete(wake);
        if (held) this.unref();
        cb(err);
      },
    });
    // A lazy reader may never be consumed (its `region` is): its failure is nobody's to hear.
    if (opts.lazy) out.on('error', () => {});
    const wake = (): void => void pump();
    const pump = async (): Promise<void> => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        if (!hold()) throw this.error ?? new Error('the fill is over');
        do {
          again = false;
          for (;;) {
            if (out.destroyed) return;
            if (this.error) return void out.destroy(this.error);
            const available = Math.min(this.received, stop) - pos;
            if (available <= 0) {
              if (pos >= stop && this.verified && endable) return void out.push(null);
              this.waiters.add(wake);
              break;
            }
            const at = pos;
            const batch = this.recent.find((b) => at >= b.start && at < b.start + b.bytes.length);
            let chunk: Buffer;
            if (batch) {
              // Caught up: a copy from memory, not a read of the file.
              const from = pos - batch.start;
              const n = Math.min(available, CHUNK, batch.bytes.length - from);
              chunk = batch.bytes.subarray(from, from + n);
            } else {
              const n = Math.min(this.written - pos, available, CHUNK);
              if (n <= 0) throw new Error('the spool lost its place');
              const buf = Buffer.allocUnsafe(n);
              const { bytesRead } = await this.handle.read(buf, 0, n, pos);
              if (out.destroyed) return;
              if (bytesRead === 0) throw new Error('the spool file ended before its bytes');
              chunk = bytesRead === n ? buf : buf.subarray(0, bytesRead);
            }
            pos += chunk.length;
            onRead?.(pos);
            if (!out.push(chunk)) break;
          }
        } while (again);
      } catch (err) {
        out.destroy(err as Error);
      } finally {
        reading = false;
      }
    };
    return out;
  }

  /**
   * The same bytes as `reader` gives, as a `FileRegion` (the blob route's fast path: reads into
   * its own reused buffers, no allocation per chunk). A read waits until its bytes arrived (the
   * last one, until the fill is verified and `endAfter` settled) and rejects if the fill fails.
   * Holds the spool until closed. Throws if the fill is not `joinable`.
   */
  region(
    range: { start: number; end?: number } = { start: 0 },
    opts: { endAfter?: Promise<unknown> } = {},
  ): FileRegion {
    if (!this.joinable) throw this.error ?? new Error('the fill is over');
    this.refs++;
    let open = true;
    let endable = opts.endAfter === undefined;
    void opts.endAfter?.finally(() => {
      endable = true;
      this.wake();
    });
    const stop = (range.end ?? this.opts.length - 1) + 1;
    return {
      start: range.start,
      length: stop - range.start,
      read: async (buffer, length, position) => {
        const end = position + length;
        for (;;) {
          if (!open) throw new Error('the region is closed');
          // Bytes that arrived are served even once the fill failed: a response whose first
          // send was ready gets its head and those bytes out, then is cut, instead of a
          // connection reset without any answer. The last byte still needs the digest.
          if (this.received >= end && (end < stop || (this.verified && endable))) break;
          if (this.error) throw this.error;
          await new Promise<void>((resolve) => this.waiters.add(resolve));
        }
        await this.copyOut(buffer, length, position);
        return length;
      },
      close: () => {
        if (open) {
          open = false;
          this.unref();
        }
        return Promise.resolve();
      },
    };
  }

  /**
   * Resolves once `upTo` bytes arrived (or all of them, verified); rejects with the fill's
   * failure. A caller that waits for a response's first send before answering can still answer
   * a fill that died early with a clean error instead of a cut connection.
   */
  async ready(upTo: number): Promise<void> {
    for (;;) {
      if (this.error) throw this.error;
      if (this.received >= upTo || this.verified) return;
      await new Promise<void>((resolve) => this.waiters.add(resolve));
    }
  }

  /** Copies received bytes `position`..+`length` into `buffer`: from memory, else the spool. */
  private async copyOut(buffer: Buffer, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const p = position + done;
      const b = this.recent.find((x) => p >= x.start && p < x.start + x.bytes.length);
      if (b) {
        const n = Math.min(length - done, b.start + b.bytes.length - p);
        b.bytes.copy(buffer, done, p - b.start, p - b.start + n);
        done += n;
        continue;
      }
      // Everything before the batches in memory is on disk.
      const n = Math.min(length - done, (this.recent[0]?.start ?? this.written) - p);
      if (n <= 0) throw new Error('the spool lost its place');
      const { bytesRead } = await this.handle.read(buffer, done, n, p);
      if (bytesRead === 0) throw new Error('the spool file ended before its bytes');
      done += bytesRead;
    }
  }

  private async pump(): Promise<void> {
    const hash = createDigester(this.opts.digest.algorithm);
    let stall: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(stall);
      stall = setTimeout(
        () =>
          this.source.destroy(
            new Error(`the upstream sent nothing for ${this.opts.stallTimeoutMs} ms`),
          ),
        this.opts.stallTimeoutMs,
      );
    };
    // Chunks that arrive while a write is in flight are written together (one writev), as one
    // batch. Readers see a batch at once (from memory); the next is taken once it is on disk.
    const write = (chunks: Buffer[], cb: (err?: Error | null) => void): void => {
      arm();
      const start = this.received;
      for (const c of chunks) {
        hash.update(c);
        this.recent.push({ start: this.received, bytes: c });
        this.received += c.length;
      }
      this.wake();
      writevFully(this.handle, chunks, start).then(() => {
        this.written = this.received;
        this.recent = this.recent.filter((c) => c.start >= start);
        cb();
      }, cb);
    };
    const spool = new Writable({
      highWaterMark: BATCH,
      write: (chunk: Buffer, _enc, cb) => write([chunk], cb),
      writev: (chunks, cb) =>
        write(
          chunks.map((c) => c.chunk as Buffer),
          cb,
        ),
    });
    arm();
    try {
      await pipeline(this.source, spool);
      if (this.received !== this.opts.length)
        throw new Error(`the upstream ended after ${this.received} of ${this.opts.length} bytes`);
      if (hash.digest('hex') !== this.opts.digest.hex)
        throw new Error(`the upstream's bytes do not hash to ${this.opts.digest.value}`);
      this.verified = true;
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
      throw this.error;
    } finally {
      clearTimeout(stall);
      this.wake();
      this.unref();
    }
  }

  /** Keeps the spool joinable (once verified too) until the returned function is called. */
  hold(): () => void {
    if (!this.joinable) return () => {};
    this.refs++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.unref();
    };
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  private unref(): void {
    this.refs--;
    if (this.refs === 1 && this.stopWhenUnread && !this.verified && !this.error)
      this.abort(new Error('nobody reads the blob any more'));
    if (this.refs > 0 || this.closed) return;
    this.closed = true;
    this.recent = [];
    void this.handle.close().catch(() => {});
  }
}
