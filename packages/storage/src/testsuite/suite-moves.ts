/// <reference types="jest" />
import { randomBytes } from 'node:crypto';
import { InvalidKeyError } from '../errors';
import { compareKeys } from '../keys';
import type { ObjectStore } from '../object-store';
import {
  expectBytes,
  expectNotFound,
  chunked,
  sha256,
  digestOf,
  MiB,
  SLOW,
  type SuiteContext,
  type ObjectStoreFixture,
} from './suite-helpers';
/** Part of `describeObjectStore`: Moves and copyFrom, concat, delete, keys, presign and ping. */
export function describeMovesAndKeys(s: SuiteContext): void {
  let store: ObjectStore;
  const ns = () => s.ns();
  let fixture: ObjectStoreFixture | undefined;
  beforeAll(() => {
    store = s.store();
    fixture = s.fixture();
  });

  describe('move and copyFrom', () => {
    it('moves an object, replacing the destination', async () => {
      const p = ns();
      const data = randomBytes(5000);
      await store.put(`${p}/staging/x`, data);
      await store.put(`${p}/final/y`, Buffer.from('old'));
      if (!store.move) return;
      await store.move(`${p}/staging/x`, `${p}/final/y`);
      expectBytes(await store.getBytes(`${p}/final/y`), data);
      await expectNotFound(store.head(`${p}/staging/x`));
      expect((await store.list(`${p}/`)).objects.map((o) => o.key)).toEqual([`${p}/final/y`]);
      await expectNotFound(store.move(`${p}/staging/x`, `${p}/final/z`));
    });

    it('copies server-side from another store on the same backend', async () => {
      const other = fixture?.other;
      if (!other || !store.copyFrom) return;
      const p = ns();
      const data = randomBytes(3000);
      await other.put(`${p}/src`, data);
      expect(await store.copyFrom(other, `${p}/src`, `${p}/dst`)).toBe(true);
      expectBytes(await store.getBytes(`${p}/dst`), data);
      await expectNotFound(store.head(`${p}/src`));
      await expectNotFound(store.copyFrom(other, `${p}/missing`, `${p}/dst2`));
    });
  });

  describe('concat', () => {
    it('concatenates one source', async () => {
      const p = ns();
      const data = randomBytes(1000);
      await store.put(`${p}/a`, data);
      const info = await store.concat([`${p}/a`], `${p}/out`);
      expect(info.size).toBe(1000);
      expectBytes(await store.getBytes(`${p}/out`), data);
      expectBytes(await store.getBytes(`${p}/a`), data);
    });

    it(
      'concatenates sources of at least 5 MiB each (but the last)',
      async () => {
        const p = ns();
        const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB + 1), randomBytes(1024)];
        await Promise.all(parts.map((d, i) => store.put(`${p}/part${i}`, d)));
        const info = await store.concat(
          parts.map((_, i) => `${p}/part${i}`),
          `${p}/whole`,
        );
        const whole = Buffer.concat(parts);
        expect(info.size).toBe(whole.length);
        expect((await store.head(`${p}/whole`)).size).toBe(whole.length);
        expect(await sha256((await store.get(`${p}/whole`)).body)).toBe(digestOf(whole));
        expect((await store.head(`${p}/part0`)).size).toBe(5 * MiB);
      },
      SLOW,
    );

    it('concatenates several small sources, empty ones included', async () => {
      const p = ns();
      const parts = ['abc', 'def', '', 'ghi'];
      await Promise.all(parts.map((s, i) => store.put(`${p}/s${i}`, Buffer.from(s))));
      const info = await store.concat(
        parts.map((_, i) => `${p}/s${i}`),
        `${p}/out`,
      );
      expect(info.size).toBe(9);
      expect((await store.getBytes(`${p}/out`)).toString()).toBe('abcdefghi');
    });
  });

  describe('delete', () => {
    it('deletes one object', async () => {
      const p = ns();
      await store.put(`${p}/a/b`, Buffer.from('x'));
      await store.put(`${p}/a/c`, Buffer.from('y'));
      await store.delete(`${p}/a/b`);
      await expectNotFound(store.head(`${p}/a/b`));
      expect((await store.list(`${p}/`)).objects.map((o) => o.key)).toEqual([`${p}/a/c`]);
      await store.delete(`${p}/a/c`);
      expect(await store.list(`${p}/`, { delimiter: '/' })).toEqual({
        objects: [],
        prefixes: [],
      });
    });

    it('deletes every object under a prefix and nothing else', async () => {
      const p = ns();
      const keep = [`${p}/dx`, `${p}/d-x/y`, `${p}/e/f`];
      const gone = [`${p}/d/a`, `${p}/d/b/c`, `${p}/d/b/e`];
      await Promise.all([...keep, ...gone].map((k) => store.put(k, Buffer.from(k))));
      await store.deletePrefix(`${p}/d/`);
      expect((await store.list(`${p}/`)).objects.map((o) => o.key)).toEqual(
        [...keep].sort(compareKeys),
      );
      expect((await store.list(`${p}/`, { delimiter: '/' })).prefixes).toEqual([
        `${p}/d-x/`,
        `${p}/e/`,
      ]);
      await expect(store.deletePrefix(`${p}/nothing/`)).resolves.toBeUndefined();
      await expect(store.deletePrefix(`${p}/e`)).rejects.toBeInstanceOf(InvalidKeyError);
    });
  });

  describe('keys', () => {
    const bad = [
      '../x',
      'a//b',
      '/a',
      'a/./b',
      'a/../b',
      '..',
      '',
      'a/',
      'a b',
      'a\\b',
      'é',
      'a?b',
      'x'.repeat(1025),
    ];

    const cases = bad.map((k) => [
      k.length > 40 ? `${k.slice(0, 8)}... (${k.length} bytes)` : k,
      k,
    ]);

    it.each(cases)(
      'rejects key %j with InvalidKeyError before touching the backend',
      async (_, key) => {
        const body = chunked(Buffer.from('data'));
        await expect(store.put(key, body)).rejects.toBeInstanceOf(InvalidKeyError);
        expect(body.readableDidRead).toBe(false);
        await expect(store.put(key, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.get(key)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.getBytes(key)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.head(key)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.delete(key)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.copy('ok', key)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.copy(key, 'ok')).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.concat([key], 'ok')).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.presignGet(key, 60)).rejects.toBeInstanceOf(InvalidKeyError);
      },
    );

    it('rejects bad prefixes', async () => {
      for (const prefix of ['../', '/a', 'a//', 'a/./', 'a/..', 'a b/']) {
        await expect(store.list(prefix)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.deletePrefix(prefix)).rejects.toBeInstanceOf(InvalidKeyError);
      }
    });

    it('accepts every allowed character and long keys', async () => {
      const p = ns();
      const odd = `${p}/AZaz09._=+-/..x/x../.x`;
      await store.put(odd, Buffer.from('odd'));
      expect((await store.getBytes(odd)).toString()).toBe('odd');
      const long = `${p}/${Array.from({ length: 4 }, (_, i) => String(i).repeat(200)).join('/')}`;
      await store.put(long, Buffer.from('long'));
      expect((await store.head(long)).size).toBe(4);
      expect((await store.list(`${p}/`)).objects.map((o) => o.key)).toEqual(
        [odd, long].sort(compareKeys),
      );
    });
  });

  describe('presign and ping', () => {
    it('presigns a download URL where the backend has them', async () => {
      const key = `${ns()}/presigned`;
      const data = randomBytes(4096);
      await store.put(key, data);
      const url = await store.presignGet(key, 300);
      if (!fixture?.presign) {
        expect(url).toBeUndefined();
        return;
      }
      expect(url).toMatch(/^https?:\/\//);
      const res = await fetch(url as string);
      expect(res.status).toBe(200);
      expectBytes(Buffer.from(await res.arrayBuffer()), data);
    });

    it('pings', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
