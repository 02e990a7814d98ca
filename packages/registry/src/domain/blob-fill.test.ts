import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { parseDigest } from '@meridian/oci';
import { BlobFill } from './blob-fill';

const digestOf = (b: Buffer) =>
  parseDigest(`sha256:${createHash('sha256').update(b).digest('hex')}`);

/** Reads a stream to its end: the bytes, or the error it ended with. */
async function drain(r: Readable): Promise<{ bytes: Buffer; error?: string }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of r) chunks.push(c as Buffer);
    return { bytes: Buffer.concat(chunks) };
  } catch (err) {
    return { bytes: Buffer.concat(chunks), error: (err as Error).message };
  }
}

/** Waits until `cond()` holds (polling the event loop). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('BlobFill', () => {
  const blob = randomBytes(3 * 1024 * 1024 + 17);
  /** A fill of `blob` from `source`. */
  const fillFrom = (source: Readable, stallTimeoutMs = 5000) =>
    BlobFill.start(source, { digest: digestOf(blob), length: blob.length, stallTimeoutMs });

  it('streams what arrived so far to every reader, then the rest as it arrives', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source);
    source.write(blob.subarray(0, 1024 * 1024));
    await until(() => fill.received === 1024 * 1024);
    // A reader that joins now gets the first MiB before the source sends another byte.
    const early = fill.reader();
    const first = await new Promise<Buffer>((r) =>
      early.once('readable', () => r(early.read() as Buffer)),
    );
    expect(first.length).toBeGreaterThan(0);
    expect(first.equals(blob.subarray(0, first.length))).toBe(true);
    const readers = [early, ...Array.from({ length: 5 }, () => fill.reader())];
    const part = fill.reader({ start: 10, end: 2 * 1024 * 1024 + 9 });
    const all = Promise.all([...readers.map(drain), drain(part)]);
    source.end(blob.subarray(1024 * 1024));
    const got = await all;
    expect(got[0].bytes.equals(blob.subarray(first.length))).toBe(true);
    for (const g of got.slice(1, 6)) expect(g.bytes.equals(blob)).toBe(true);
    expect(got[6]!.bytes.equals(blob.subarray(10, 2 * 1024 * 1024 + 10))).toBe(true);
    await expect(fill.done).resolves.toBeUndefined();
  });

  it('does not end any reader before the bytes hashed to the digest: wrong bytes fail them all', async () => {
    const source = new PassThrough();
    const wrong = Buffer.from(blob);
    wrong[wrong.length - 1]! ^= 0xff;
    const fill = await fillFrom(source);
    const readers = Array.from({ length: 3 }, () => drain(fill.reader()));
    source.end(wrong);
    for (const r of await Promise.all(readers)) expect(r.error).toMatch(/do not hash/);
    await expect(fill.done).rejects.toThrow(/do not hash/);
    expect(fill.joinable).toBe(false);
  });

  it('fails every reader when the source fails mid-way or ends short; none hangs', async () => {
    for (const how of ['error', 'short'] as const) {
      const source = new PassThrough();
      const fill = await fillFrom(source);
      const readers = Array.from({ length: 3 }, () => drain(fill.reader()));
      source.write(blob.subarray(0, 1000));
      await until(() => fill.received === 1000);
      if (how === 'error') source.destroy(new Error('connection reset'));
      else source.end();
      const got = await Promise.all(readers);
      for (const r of got) {
        expect(r.error).toMatch(how === 'error' ? /connection reset/ : /ended after 1000/);
        expect(r.bytes.equals(blob.subarray(0, r.bytes.length))).toBe(true);
      }
    }
  });

  it('fails every reader when the source stalls', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source, 100);
    const r = drain(fill.reader());
    source.write(blob.subarray(0, 10));
    expect((await r).error).toMatch(/sent nothing for 100 ms/);
  });

  it('keeps filling for the others when a reader goes away', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source);
    const leaving = fill.reader();
    const staying = drain(fill.reader());
    source.write(blob.subarray(0, 4096));
    await new Promise((r) => leaving.once('data', r));
    leaving.destroy();
    source.end(blob.subarray(4096));
    expect((await staying).bytes.equals(blob)).toBe(true);
    await expect(fill.done).resolves.toBeUndefined();
  });

  it('stops once nobody reads, when asked to', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source);
    const r = fill.reader();
    fill.stopWhenNobodyReads();
    source.write(blob.subarray(0, 10));
    r.destroy();
    await expect(fill.done).rejects.toThrow(/nobody reads/);
    expect(source.destroyed).toBe(true);
  });
  it('serves the same bytes as a file region, each read waiting for its bytes', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source);
    const region = fill.region();
    expect(region).toMatchObject({ start: 0, length: blob.length });
    const got = Buffer.alloc(blob.length);
    const MiB = 1024 * 1024;
    const reads = (async () => {
      for (let pos = 0; pos < blob.length; pos += MiB) {
        const n = Math.min(MiB, blob.length - pos);
        expect(await region.read(got.subarray(pos), n, pos)).toBe(n);
      }
    })();
    for (let pos = 0; pos < blob.length; pos += 100_000)
      source.write(blob.subarray(pos, Math.min(pos + 100_000, blob.length)));
    source.end();
    await reads;
    await region.close();
    expect(got.equals(blob)).toBe(true);
  });

  it('fails a region read when the fill fails, and never resolves the last read before the digest is checked', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source);
    const region = fill.region({ start: blob.length - 10 });
    const last = region.read(Buffer.alloc(10), 10, blob.length - 10);
    const wrong = Buffer.from(blob);
    wrong[0]! ^= 0xff;
    source.end(wrong);
    await expect(last).rejects.toThrow(/do not hash/);
    await region.close();
  });

  it('still serves a region the bytes that arrived before the fill failed, then fails the rest', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source);
    const region = fill.region();
    source.write(blob.subarray(0, 5000));
    await fill.ready(5000);
    source.destroy(new Error('the primary went away'));
    await expect(fill.done).rejects.toThrow(/went away/);
    // What a response waited for (its first send) is still there to send.
    const first = Buffer.alloc(5000);
    expect(await region.read(first, 5000, 0)).toBe(5000);
    expect(first.equals(blob.subarray(0, 5000))).toBe(true);
    await expect(region.read(Buffer.alloc(10), 10, 5000)).rejects.toThrow(/went away/);
    await region.close();
  });

  it('a lazy reader holds nothing until it is read', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source);
    fill.reader({ start: 0 }, { lazy: true }); // never read
    const r = fill.reader();
    fill.stopWhenNobodyReads();
    source.write(blob.subarray(0, 10));
    r.destroy();
    await expect(fill.done).rejects.toThrow(/nobody reads/);
  });
  it('ready() waits for the first bytes a response sends, and rejects when the fill dies first', async () => {
    const source = new PassThrough();
    const fill = await fillFrom(source);
    let ready = false;
    const first = fill.ready(1024 * 1024).then(() => (ready = true));
    source.write(blob.subarray(0, 1000));
    await until(() => fill.received === 1000);
    expect(ready).toBe(false);
    source.write(blob.subarray(1000, 2 * 1024 * 1024));
    await first;
    const later = fill.ready(blob.length);
    source.destroy(new Error('connection reset'));
    await expect(later).rejects.toThrow(/connection reset/);
  });
});
