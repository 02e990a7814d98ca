import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf, parseDigest } from '@meridian/oci';
import { verifyBlobs } from './blob-verify';
import { exists } from './object-helpers';
import { Layout } from './layout';
import { openStore } from './open-store';
import type { ObjectStore } from './object-store';

describe('verifyBlobs', () => {
  let dir: string;
  let store: ObjectStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-verify-'));
    store = await openStore(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const put = async (bytes: Buffer, stored = bytes): Promise<string> => {
    const digest = digestOf(bytes);
    await store.put(Layout.blobData(parseDigest(digest)), stored);
    return digest;
  };

  it('keeps to the rate: the waits add up to bytes / rate, and no chunk is read ahead of it', async () => {
    for (let i = 0; i < 3; i++) await put(Buffer.alloc(100_000, i));
    let now = 0;
    const clock = {
      now: () => now,
      sleep: async (ms: number) => {
        now += ms;
      },
    };
    const report = await verifyBlobs(store, { bytesPerSecond: 50_000, clock });
    expect(report.bytes).toBe(300_000);
    expect(report.mismatches).toBe(0);
    expect(now).toBe(6000); // 300 kB at 50 kB/s
  });

  it('reports a blob with other bytes under its digest and quarantines it with repair', async () => {
    const good = await put(Buffer.from('good'));
    const bad = await put(Buffer.from('real bytes'), Buffer.from('evil bytes'));
    await store.put('blobs/sha256/zz/not-a-digest/data', Buffer.from('x'));
    const progress: number[] = [];
    const found = await verifyBlobs(store, { onProgress: (p) => progress.push(p.blobs) });
    expect(found.found.map((m) => m.digest)).toEqual([bad]);
    expect(found.found[0]!.actual).toBe(digestOf('evil bytes'));
    expect(found.unrecognised).toEqual(['blobs/sha256/zz/not-a-digest/data']);
    expect(found.blobs).toBe(2);
    expect(progress.length).toBeGreaterThan(0);
    expect(await exists(store, Layout.blobData(parseDigest(bad)))).toBe(true);

    const repaired = await verifyBlobs(store, { repair: true });
    expect(repaired.found[0]!.quarantined).toBe(true);
    const key = Layout.blobData(parseDigest(bad));
    expect(await exists(store, key)).toBe(false);
    expect((await store.getBytes(Layout.quarantined(key))).toString()).toBe('evil bytes');
    expect(await exists(store, Layout.blobData(parseDigest(good)))).toBe(true);
    expect((await verifyBlobs(store)).mismatches).toBe(0);
  });

  it('streams: a blob larger than any buffer is hashed a chunk at a time', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const hashOf = digestOf(Buffer.concat(Array.from({ length: 8 }, () => chunk)));
    await store.put(
      Layout.blobData(parseDigest(hashOf)),
      Readable.from(
        (function* () {
          for (let i = 0; i < 8; i++) yield chunk;
        })(),
      ),
    );
    const reads: number[] = [];
    const report = await verifyBlobs(store, {
      onProgress: (p) => reads.push(p.bytes),
    });
    expect(report.mismatches).toBe(0);
    expect(reads.length).toBeGreaterThan(2);
  });
});
