import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf, parseDigest } from '@meridian/oci';
import { openStore } from './open-store';
import { DigestMismatchError, exists, putVerified, readJson } from './object-helpers';
import type { ObjectStore } from './object-store';

describe('object helpers', () => {
  let dir: string;
  let store: ObjectStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-helpers-'));
    store = await openStore(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('putVerified makes the bytes visible only when they match the digest', async () => {
    const good = Buffer.from('the right bytes');
    const d = parseDigest(digestOf(good));
    await putVerified(store, 'blobs/x/data', Readable.from([good]), d, good.length);
    expect((await store.getBytes('blobs/x/data')).equals(good)).toBe(true);

    const wrong = Readable.from([Buffer.from('other bytes')]);
    await expect(putVerified(store, 'blobs/y/data', wrong, d)).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
    expect(await exists(store, 'blobs/y/data')).toBe(false);
    expect((await store.list('_replication/')).objects).toEqual([]);
  });

  it('readJson answers undefined for a missing key and the object otherwise', async () => {
    expect(await readJson(store, 'a/b')).toBeUndefined();
    await store.put('a/b', Buffer.from('{"n":1}'));
    expect(await readJson<{ n: number }>(store, 'a/b')).toEqual({ n: 1 });
  });
});
