/// <reference types="jest" />
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { compareKeys } from '../keys';
import { putChecked, putInOrder } from '../object-helpers';
import type { ObjectStore } from '../object-store';
import {
  expectBytes,
  expectNotFound,
  listPages,
  isDate,
  sleep,
  CheckFailed,
  type SuiteContext,
} from './suite-helpers';
/** Part of `describeObjectStore`: Listing, copies, checked and ordered writes. */
export function describeListsAndWrites(s: SuiteContext): void {
  let store: ObjectStore;
  const ns = () => s.ns();
  beforeAll(() => {
    store = s.store();
  });

  describe('list', () => {
    // Byte order puts '+' < '-' < '.' < '/' < '0' < '=' < 'A' < '_' < 'a': a naive
    // directory walk gets this wrong.
    const names = ['a+b', 'a-b', 'a.b', 'a/b', 'a/c/d', 'a0', 'a=b', 'ab', 'A', 'B/x', '_u', 'z'];
    let p: string;
    beforeAll(async () => {
      p = ns();
      await Promise.all(names.map((n, i) => store.put(`${p}/${n}`, Buffer.alloc(i + 1, 7))));
    });

    it('lists every key under a prefix in byte order, with sizes', async () => {
      const page = await store.list(`${p}/`);
      const expected = names.map((n) => `${p}/${n}`).sort(compareKeys);
      expect(page.objects.map((o) => o.key)).toEqual(expected);
      expect(page.prefixes).toEqual([]);
      expect(page.cursor).toBeUndefined();
      const ab = page.objects.find((o) => o.key === `${p}/ab`);
      expect(ab?.size).toBe(names.indexOf('ab') + 1);
      expect(isDate(ab?.modified)).toBe(true);
    });

    it('groups by delimiter into common prefixes', async () => {
      const page = await store.list(`${p}/`, { delimiter: '/' });
      expect(page.objects.map((o) => o.key)).toEqual(
        ['A', '_u', 'a+b', 'a-b', 'a.b', 'a0', 'a=b', 'ab', 'z']
          .map((n) => `${p}/${n}`)
          .sort(compareKeys),
      );
      expect(page.prefixes).toEqual([`${p}/B/`, `${p}/a/`]);
      const sub = await store.list(`${p}/a/`, { delimiter: '/' });
      expect(sub.objects.map((o) => o.key)).toEqual([`${p}/a/b`]);
      expect(sub.prefixes).toEqual([`${p}/a/c/`]);
    });

    it('matches a partial last segment', async () => {
      const grouped = await store.list(`${p}/a`, { delimiter: '/' });
      expect(grouped.objects.map((o) => o.key)).toEqual(
        ['a+b', 'a-b', 'a.b', 'a0', 'a=b', 'ab'].map((n) => `${p}/${n}`),
      );
      expect(grouped.prefixes).toEqual([`${p}/a/`]);
      const flat = await store.list(`${p}/a/c`);
      expect(flat.objects.map((o) => o.key)).toEqual([`${p}/a/c/d`]);
    });

    it('returns an empty page for a prefix with no keys', async () => {
      expect(await store.list(`${p}/nothing/`, { delimiter: '/' })).toEqual({
        objects: [],
        prefixes: [],
      });
      expect(await store.list(`${ns()}/`)).toEqual({ objects: [], prefixes: [] });
    });

    it('pages with limit and cursor across more than two pages', async () => {
      const q = ns();
      const keys = Array.from({ length: 25 }, (_, i) => `${q}/k${String(i).padStart(2, '0')}`);
      await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
      const pages = await listPages(store, `${q}/`, { limit: 10 });
      expect(pages.map((pg) => pg.objects.length)).toEqual([10, 10, 5]);
      expect(pages.slice(0, 2).every((pg) => typeof pg.cursor === 'string')).toBe(true);
      expect(pages[2]?.cursor).toBeUndefined();
      expect(pages.flatMap((pg) => pg.objects.map((o) => o.key))).toEqual(keys);
    });

    it('pages grouped listings, counting prefixes and objects together', async () => {
      const q = ns();
      const dirs = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5'];
      const files = ['c', 'd', 'd6', 'e', 'f'];
      await Promise.all([
        ...dirs.flatMap((d) => [1, 2].map((i) => store.put(`${q}/${d}/${i}`, Buffer.from('x')))),
        ...files.map((f) => store.put(`${q}/${f}`, Buffer.from('y'))),
      ]);
      const pages = await listPages(store, `${q}/`, { delimiter: '/', limit: 4 });
      expect(pages.length).toBe(3);
      for (const pg of pages) expect(pg.objects.length + pg.prefixes.length).toBeLessThanOrEqual(4);
      expect(pages.flatMap((pg) => pg.prefixes)).toEqual(dirs.map((d) => `${q}/${d}/`));
      expect(pages.flatMap((pg) => pg.objects.map((o) => o.key))).toEqual(
        files.map((f) => `${q}/${f}`),
      );
    });
  });

  describe('copy', () => {
    it('copies an object, leaving the source, and overwrites the destination', async () => {
      const p = ns();
      const data = randomBytes(70_000);
      await store.put(`${p}/src=1+x`, data);
      await store.put(`${p}/dst/b`, Buffer.from('old'));
      await store.copy(`${p}/src=1+x`, `${p}/dst/a`);
      await store.copy(`${p}/src=1+x`, `${p}/dst/b`);
      expectBytes(await store.getBytes(`${p}/dst/a`), data);
      expectBytes(await store.getBytes(`${p}/dst/b`), data);
      expectBytes(await store.getBytes(`${p}/src=1+x`), data);
      expect((await store.head(`${p}/dst/a`)).size).toBe(data.length);
    });
  });

  describe('checked and ordered writes', () => {
    /** A check that passes only when the bytes that streamed by hash to `expected`. */
    const hashing = (expected: Buffer) => {
      const hash = createHash('sha256');
      const want = createHash('sha256').update(expected).digest('hex');
      const stream = new PassThrough({
        transform(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      const check = () => {
        if (hash.digest('hex') !== want) throw new CheckFailed();
      };
      return { stream, check };
    };

    it('putChecked makes the object visible when the check passes', async () => {
      const key = `${ns()}/ok`;
      const data = randomBytes(200 * 1024);
      const h = hashing(data);
      Readable.from([data]).pipe(h.stream);
      const info = await putChecked(store, key, h.stream, h.check, { size: data.length });
      expect(info.size).toBe(data.length);
      expectBytes(await store.getBytes(key), data);
    });

    it('putChecked leaves nothing visible, and an old object intact, when the check fails', async () => {
      const p = ns();
      const old = randomBytes(1000);
      await store.put(`${p}/kept`, old);
      for (const key of [`${p}/new`, `${p}/kept`]) {
        const h = hashing(Buffer.from('what was promised'));
        Readable.from([randomBytes(70 * 1024)]).pipe(h.stream);
        await expect(putChecked(store, key, h.stream, h.check)).rejects.toBeInstanceOf(CheckFailed);
      }
      await expectNotFound(store.head(`${p}/new`));
      expectBytes(await store.getBytes(`${p}/kept`), old);
      expect((await store.list(`${p}/`)).objects.map((o) => o.key)).toEqual([`${p}/kept`]);
    });

    it('putInOrder writes every entry, buffers and checked streams', async () => {
      const p = ns();
      const a = randomBytes(100);
      const b = randomBytes(300 * 1024);
      const h = hashing(b);
      Readable.from([b]).pipe(h.stream);
      const infos = await putInOrder(store, [
        { key: `${p}/a`, body: a },
        { key: `${p}/b`, body: h.stream, check: h.check, size: b.length },
        { key: `${p}/c/d`, body: Buffer.alloc(0) },
      ]);
      expect(infos.map((i) => [i.key, i.size])).toEqual([
        [`${p}/a`, 100],
        [`${p}/b`, b.length],
        [`${p}/c/d`, 0],
      ]);
      expectBytes(await store.getBytes(`${p}/a`), a);
      expectBytes(await store.getBytes(`${p}/b`), b);
      expect((await store.head(`${p}/c/d`)).size).toBe(0);
    });

    it('putInOrder shows no entry before the ones ahead of it are complete', async () => {
      const p = ns();
      const first = randomBytes(128 * 1024);
      const body = new PassThrough();
      const writing = putInOrder(store, [
        { key: `${p}/first`, body },
        { key: `${p}/second`, body: Buffer.from('after first') },
      ]);
      body.write(first.subarray(0, 64 * 1024));
      await sleep(100);
      await expectNotFound(store.head(`${p}/first`));
      await expectNotFound(store.head(`${p}/second`));
      body.end(first.subarray(64 * 1024));
      await writing;
      expectBytes(await store.getBytes(`${p}/first`), first);
      expect((await store.getBytes(`${p}/second`)).toString()).toBe('after first');
    });

    it('putInOrder stops at an entry whose check fails: it and the ones after stay invisible', async () => {
      const p = ns();
      const h = hashing(Buffer.from('promised'));
      Readable.from([Buffer.from('delivered')]).pipe(h.stream);
      await expect(
        putInOrder(store, [
          { key: `${p}/1`, body: Buffer.from('one') },
          { key: `${p}/2`, body: h.stream, check: h.check },
          { key: `${p}/3`, body: Buffer.from('three') },
        ]),
      ).rejects.toBeInstanceOf(CheckFailed);
      await expectNotFound(store.head(`${p}/2`));
      await expectNotFound(store.head(`${p}/3`));
    });

    it('reads back objects written with durable: false, and objects larger than 64 KiB', async () => {
      const p = ns();
      const small = randomBytes(500);
      const big = randomBytes(200 * 1024 + 17);
      await store.put(`${p}/scratch`, small, { durable: false });
      await store.put(`${p}/big`, Readable.from([big]), { durable: false });
      expectBytes(await store.getBytes(`${p}/scratch`), small);
      expectBytes(await store.getBytes(`${p}/big`), big);
    });
  });
}
