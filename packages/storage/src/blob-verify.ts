import { createDigester, parseDigest, type Digest } from '@meridian/oci';
import { isNotFound } from './errors';
import { Layout } from './layout';
import type { ObjectInfo, ObjectStore } from './object-store';

/** Where a verify is: blobs and bytes hashed so far, of how many. */
export interface VerifyProgress {
  blobs: number;
  totalBlobs: number;
  bytes: number;
  totalBytes: number;
  mismatches: number;
}

/** A blob whose bytes do not hash to the digest its key names. */
export interface BlobMismatch {
  key: string;
  /** The digest the key names. */
  digest: string;
  /** The digest of the bytes stored there. */
  actual: string;
  size: number;
  /** Moved to `_quarantine/` (with `repair`). False when not repairing, or when it changed meanwhile. */
  quarantined: boolean;
}

export interface VerifyOptions {
  /** Move each mismatch to `Layout.quarantined(key)`, so it is no longer served. Default false. */
  repair?: boolean;
  /** Read at most this many bytes per second. Default unlimited. */
  bytesPerSecond?: number;
  /** Called as the bytes stream (at most once per chunk read); the report gives the totals. */
  onProgress?: (p: VerifyProgress) => void;
  /** Called for each mismatch, once it is handled. */
  onMismatch?: (m: BlobMismatch) => void;
  /** The clock and the wait the rate limit uses. Default `Date.now` and a timer. */
  clock?: { now(): number; sleep(ms: number): Promise<void> };
}

export interface VerifyReport extends VerifyProgress {
  mismatches: number;
  found: BlobMismatch[];
  /** Keys under `blobs/` that do not name a blob (left alone). */
  unrecognised: string[];
}

const BLOB_KEY = /^blobs\/([a-z0-9]+)\/[0-9a-f]{2}\/([0-9a-f]+)\/data$/;

/**
 * Re-hashes every blob of a store (one region), streamed: a chunk at a time, never a whole blob in
 * memory, at most `bytesPerSecond`. Reports every blob whose bytes do not hash to its digest and,
 * with `repair`, moves it to `_quarantine/` (a later honest push stores it again).
 */
export async function verifyBlobs(
  store: ObjectStore,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  const clock = opts.clock ?? {
    now: () => Date.now(),
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
  };
  const report: VerifyReport = {
    blobs: 0,
    totalBlobs: 0,
    bytes: 0,
    totalBytes: 0,
    mismatches: 0,
    found: [],
    unrecognised: [],
  };
  // A first listing for the totals a progress bar needs; the second one does the work.
  for await (const o of listBlobs(store)) {
    report.totalBlobs++;
    report.totalBytes += o.size;
  }
  const started = clock.now();
  const throttle = async (): Promise<void> => {
    const rate = opts.bytesPerSecond;
    if (!rate || rate <= 0) return;
    const due = started + (report.bytes / rate) * 1000;
    const wait = due - clock.now();
    if (wait > 0) await clock.sleep(wait);
  };
  for await (const o of listBlobs(store)) {
    const d = digestOfKey(o.key);
    if (!d) {
      report.unrecognised.push(o.key);
      continue;
    }
    const actual = await hashObject(store, o.key, d, async (n) => {
      report.bytes += n;
      opts.onProgress?.(snapshot(report));
      await throttle();
    });
    report.blobs++;
    if (actual === undefined || actual === d.value) continue; // gone meanwhile, or sound
    const m: BlobMismatch = {
      key: o.key,
      digest: d.value,
      actual,
      size: o.size,
      quarantined: false,
    };
    if (opts.repair) m.quarantined = await quarantine(store, o);
    report.mismatches++;
    report.found.push(m);
    opts.onMismatch?.(m);
  }
  return report;
}

/** Every object under `blobs/`, a page at a time. */
async function* listBlobs(store: ObjectStore): AsyncGenerator<ObjectInfo> {
  let cursor: string | undefined;
  do {
    const page = await store.list('blobs/', { cursor });
    yield* page.objects;
    cursor = page.cursor;
  } while (cursor);
}

function digestOfKey(key: string): Digest | undefined {
  const m = BLOB_KEY.exec(key);
  if (!m) return undefined;
  try {
    return parseDigest(`${m[1]}:${m[2]}`);
  } catch {
    return undefined;
  }
}

/** `algorithm:hex` of the stored bytes, or undefined when the object is gone. */
async function hashObject(
  store: ObjectStore,
  key: string,
  d: Digest,
  onChunk: (n: number) => Promise<void>,
): Promise<string | undefined> {
  const hash = createDigester(d.algorithm);
  let body;
  try {
    ({ body } = await store.get(key));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    await onChunk((chunk as Buffer).length);
  }
  return `${d.algorithm}:${hash.digest('hex')}`;
}

/**
 * Moves a bad blob out of the served key space, unless it changed since it was listed (an upload
 * replaced it meanwhile: the next verify looks at the new bytes).
 */
async function quarantine(store: ObjectStore, listed: ObjectInfo): Promise<boolean> {
  let now: ObjectInfo;
  try {
    now = await store.head(listed.key);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  // Seconds: S3 lists times to the millisecond but answers HEAD to the second.
  const sec = (t: Date) => Math.floor(t.getTime() / 1000);
  if (now.size !== listed.size || sec(now.modified) !== sec(listed.modified)) return false;
  const dst = Layout.quarantined(listed.key);
  if (store.move) await store.move(listed.key, dst);
  else {
    await store.copy(listed.key, dst);
    await store.delete(listed.key);
  }
  return true;
}

function snapshot(r: VerifyReport): VerifyProgress {
  return {
    blobs: r.blobs,
    totalBlobs: r.totalBlobs,
    bytes: r.bytes,
    totalBytes: r.totalBytes,
    mismatches: r.mismatches,
  };
}
