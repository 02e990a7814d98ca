import { mkdirSync } from 'node:fs';
import {
  open,
  readdir,
  readFile,
  rename,
  truncate,
  unlink,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';

/** Every journal entry carries the sequence the journal gave it (1, 2, 3, … per node). */
export interface Sequenced {
  sequence: number;
}

export interface EventJournalOptions {
  /**
   * The node's own directory for segments (`<first sequence>.jsonl`). Not under the object
   * store: storage is replicated content, the journal is this node's state. Without a
   * directory the journal lives in memory only (tests, `createApp` without a node).
   */
  dir?: string;
  /** A segment is closed and a new one started once it passes this size. Default 4 MiB. */
  segmentBytes?: number;
  /** Most recent entries kept in memory so subscribers that keep up never read the disk. Default 10 000. */
  memoryEntries?: number;
}

const SEGMENT = /^(\d{16})\.jsonl$/;
const segmentName = (first: number): string => `${String(first).padStart(16, '0')}.jsonl`;

/**
 * An append-only, fsynced log of a node's domain events. Appends made while a write+fsync is in
 * flight are written together with one fsync (group commit): many concurrent pushes share it.
 * An append resolves once its entry is on disk; only durable entries are ever read back.
 */
export class EventJournal<T extends Sequenced> {
  private readonly segmentBytes: number;
  private readonly memoryEntries: number;
  /** First sequence of each segment on disk, oldest first; the last one is being written. */
  private segments: number[] = [];
  private fh: FileHandle | undefined;
  private size = 0;
  private next = 1;
  private durable = 0;
  private memory: T[] = [];
  private pending: { entry: T; line: string; done: () => void; fail: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private readonly listeners = new Set<() => void>();
  /** Number of write+fsync rounds (to see group commit at work). */
  fsyncs = 0;

  private constructor(private readonly opts: EventJournalOptions) {
    this.segmentBytes = opts.segmentBytes ?? 4 * 1024 * 1024;
    this.memoryEntries = opts.memoryEntries ?? 10_000;
  }

  /** Opens (or creates) the journal; a torn last line from a crash is cut off. */
  static async open<T extends Sequenced>(opts: EventJournalOptions = {}): Promise<EventJournal<T>> {
    const j = new EventJournal<T>(opts);
    if (opts.dir) await j.recover(opts.dir);
    return j;
  }

  /** An in-memory journal, ready at once. */
  static memory<T extends Sequenced>(opts: Omit<EventJournalOptions, 'dir'> = {}): EventJournal<T> {
    return new EventJournal<T>(opts);
  }

  get dir(): string | undefined {
    return this.opts.dir;
  }
  /** The sequence of the last durable entry (0 when empty). */
  get last(): number {
    return this.durable;
  }
  /** The oldest sequence still readable. */
  get first(): number {
    if (this.opts.dir) return this.segments[0] ?? this.next;
    return this.memory[0]?.sequence ?? this.next;
  }

  /** Called after each durable batch. */
  onAppend(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Gives the entry the next sequence at once; resolves when it is durable. */
  append(make: (sequence: number) => T): { entry: T; durable: Promise<void> } {
    const entry = make(this.next++);
    const durable = new Promise<void>((done, fail) => {
      this.pending.push({ entry, line: JSON.stringify(entry) + '\n', done, fail });
    });
    this.kick();
    return { entry, durable };
  }

  /** Up to `limit` durable entries after `after`, in sequence order. */
  async read(after: number, limit: number): Promise<T[]> {
    const head = this.memory[0];
    if (head && head.sequence <= after + 1) {
      const start = after + 1 - head.sequence;
      return this.memory.slice(start, start + limit);
    }
    if (!this.opts.dir) return this.memory.slice(0, limit);
    const out: T[] = [];
    for (let i = 0; i < this.segments.length && out.length < limit; i++) {
      const nextFirst = this.segments[i + 1];
      if (nextFirst !== undefined && nextFirst <= after + 1) continue;
      for (const e of await this.readSegment(this.segments[i]!)) {
        if (e.sequence > after && e.sequence <= this.durable) out.push(e);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** Removes whole segments every entry of which is at or below `upTo` (all acknowledged). */
  async truncate(upTo: number): Promise<number> {
    let removed = 0;
    while (this.segments.length > 1 && this.segments[1]! - 1 <= upTo) {
      const first = this.segments.shift()!;
      await unlink(join(this.opts.dir!, segmentName(first))).catch(() => {});
      removed++;
    }
    if (!this.opts.dir) {
      const keep = this.memory.findIndex((e) => e.sequence > upTo);
      this.memory = keep < 0 ? [] : this.memory.slice(keep);
    }
    return removed;
  }

  /** Segment files on disk (first sequences), oldest first. */
  segmentList(): number[] {
    return [...this.segments];
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.fh?.close();
    this.fh = undefined;
    if (this.opts.dir) await unlink(join(this.opts.dir, 'LOCK')).catch(() => {});
  }

  /** Starts a flush unless one runs; the one that ends re-checks for appends it missed. */
  private kick(): void {
    if (this.flushing || this.pending.length === 0) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    // Yield first: appends made in this tick join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        if (this.opts.dir) await this.write(batch.map((p) => p.line).join(''));
      } catch (err) {
        for (const p of batch) p.fail(err);
        continue;
      }
      this.fsyncs++;
      for (const p of batch) {
        this.memory.push(p.entry);
        this.durable = p.entry.sequence;
      }
      if (this.memory.length > this.memoryEntries)
        this.memory = this.memory.slice(this.memory.length - this.memoryEntries);
      for (const p of batch) p.done();
      for (const l of this.listeners) l();
    }
  }

  private async write(text: string): Promise<void> {
    if (!this.fh || this.size >= this.segmentBytes) await this.rotate();
    const buf = Buffer.from(text);
    await this.fh!.write(buf, 0, buf.length, this.size);
    await this.fh!.datasync();
    this.size += buf.length;
  }

  private async rotate(): Promise<void> {
    await this.fh?.close();
    const first = this.durable + 1; // the batch being written starts the segment
    this.fh = await open(join(this.opts.dir!, segmentName(first)), 'a');
    this.size = (await this.fh.stat()).size;
    if (this.segments[this.segments.length - 1] !== first) this.segments.push(first);
  }

  private async readSegment(first: number): Promise<T[]> {
    const text = await readFile(join(this.opts.dir!, segmentName(first)), 'utf8').catch(() => '');
    return parseLines<T>(text).entries;
  }

  private async recover(dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    await lockDir(dir);
    this.segments = (await readdir(dir))
      .map((f) => SEGMENT.exec(f)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const lastFirst = this.segments[this.segments.length - 1];
    if (lastFirst === undefined) return;
    const path = join(dir, segmentName(lastFirst));
    const text = await readFile(path, 'utf8');
    const { entries, goodBytes } = parseLines<T>(text);
    if (goodBytes < Buffer.byteLength(text)) await truncate(path, goodBytes);
    const last = entries[entries.length - 1]?.sequence ?? lastFirst - 1;
    this.durable = last;
    this.next = last + 1;
    this.memory = entries.slice(-this.memoryEntries);
    this.fh = await open(path, 'a');
    this.size = goodBytes;
  }
}

/** One process per journal: a `LOCK` file names the owner; a dead owner's lock is taken over. */
async function lockDir(dir: string): Promise<void> {
  const path = join(dir, 'LOCK');
  const owner = Number(await readFile(path, 'utf8').catch(() => ''));
  if (owner > 0 && owner !== process.pid && alive(owner))
    throw new Error(`the event journal ${dir} is in use by process ${owner} (events.journalDir)`);
  await writeFile(path, String(process.pid));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whole lines that parse; a torn or garbled tail (a crash mid-write) ends the segment. */
function parseLines<T>(text: string): { entries: T[]; goodBytes: number } {
  const entries: T[] = [];
  let pos = 0;
  for (;;) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) break;
    try {
      entries.push(JSON.parse(text.slice(pos, nl)) as T);
    } catch {
      break;
    }
    pos = nl + 1;
  }
  return { entries, goodBytes: Buffer.byteLength(text.slice(0, pos)) };
}

/** Per-subscriber acknowledged offsets: one small file each, replaced atomically. */
export class OffsetStore {
  private readonly mem = new Map<string, number>();
  constructor(private readonly dir: string | undefined) {
    if (dir) mkdirSync(dir, { recursive: true });
  }

  async load(name: string): Promise<number | undefined> {
    if (!this.dir) return this.mem.get(name);
    try {
      const { sequence } = JSON.parse(await readFile(this.path(name), 'utf8')) as Sequenced;
      return Number.isInteger(sequence) ? sequence : undefined;
    } catch {
      return undefined;
    }
  }

  async save(name: string, sequence: number): Promise<void> {
    this.mem.set(name, sequence);
    if (!this.dir) return;
    const tmp = `${this.path(name)}.tmp`;
    await writeFile(tmp, JSON.stringify({ sequence }));
    await rename(tmp, this.path(name));
  }

  private path(name: string): string {
    return join(this.dir!, `${encodeURIComponent(name)}.json`);
  }
}
