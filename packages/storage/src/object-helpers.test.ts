import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf, parseDigest } from '@meridian/oci';
import { BaseStore } from './base-store';
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

  /** The same store through a driver without putChecked/putInOrder: the staged fallbacks. */
  const staged = (): ObjectStore =>
    new BaseStore(
      new Proxy((store as BaseStore).driver, {
        get: (target, prop, receiver) =>
          prop === 'putChecked' || prop === 'putInOrder'
            ? undefined
            : (Reflect.get(target, prop, receiver) as unknown),
      }),
    );

  it.each([
    ['natively (fs putChecked)', () => store],
    ['through a staging key', staged],
  ])(
    'putVerified makes the bytes visible only when they match the digest, %s',
    async (_how, which) => {
      const s = which();
      const good = Buffer.from('the right bytes');
      const d = parseDigest(digestOf(good));
      await putVerified(s, 'blobs/x/data', Readable.from([good]), d, good.length);
      expect((await s.getBytes('blobs/x/data')).equals(good)).toBe(true);

      const wrong = Readable.from([Buffer.from('other bytes')]);
      await expect(putVerified(s, 'blobs/y/data', wrong, d)).rejects.toBeInstanceOf(
        DigestMismatchError,
      );
      expect(await exists(s, 'blobs/y/data')).toBe(false);
      expect((await s.list('_replication/')).objects).toEqual([]);
      expect((await s.list('blobs/')).objects.map((o) => o.key)).toEqual(['blobs/x/data']);
    },
  );

  it('readJson answers undefined for a missing key and the object otherwise', async () => {
    expect(await readJson(store, 'a/b')).toBeUndefined();
    await store.put('a/b', Buffer.from('{"n":1}'));
    expect(await readJson<{ n: number }>(store, 'a/b')).toEqual({ n: 1 });
  });
});
