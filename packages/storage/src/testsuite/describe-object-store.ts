/// <reference types="jest" />
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { InvalidKeyError, InvalidRangeError, NotFoundError } from '../errors';
import { compareKeys } from '../keys';
import { putChecked, putInOrder } from '../object-helpers';
import type { ListOptions, ObjectInfo, ObjectStore } from '../object-store';

class CheckFailed extends Error {}

export interface ObjectStoreFixture {
  /** The store under test, normally a `BaseStore` over the driver. */
  store: ObjectStore;
  cleanup(): Promise<void>;
  /** True when `presignGet` must return a URL that plain `fetch` can download. */
  presign?: boolean;
  /**
   * A second, empty store on the same backend (another directory, another bucket): `copyFrom`
   * it must then be server-side (resolve true).
   */
  other?: ObjectStore;
}

const MiB = 1024 * 1024;
const SLOW = 120_000;

/**
 * The one conformance suite every driver passes (distribution's `driver/testsuites`). Each test
 * works under its own key prefix, so the fixture needs only one empty store per run. Give S3 a
 * small `partSize` (5 MiB) so the 20 MiB cases exercise multipart uploads.
 */
export function describeObjectStore(
  name: string,
  factory: () => Promise<ObjectStoreFixture>,
): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let fixture: ObjectStoreFixture | undefined;
    let store: ObjectStore;
    let seq = 0;
    /** A fresh key prefix (no trailing slash) for one test. */
    const ns = () => `t${++seq}`;

    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
    }, SLOW);
    afterAll(async () => {
      await fixture?.cleanup();
    }, SLOW);

    describe('reads and writes', () => {
      it('puts a Buffer and reads it back with get, getBytes and head', async () => {
        const key = `${ns()}/dir/hello.txt`;
        const before = Date.now();
        const info = await store.put(key, Buffer.from('hello, world'));
        expect(info).toMatchObject({ key, size: 12 });
        expectBytes(await store.getBytes(key), Buffer.from('hello, world'));
        const got = await store.get(key);
        expect(got.size).toBe(12);
        expect(got.length).toBe(12);
        expectBytes(await collect(got.body), Buffer.from('hello, world'));
        const head = await store.head(key);
        expect(head).toMatchObject({ key, size: 12 });
        expect(isDate(head.modified)).toBe(true);
        expect(Math.abs(head.modified.getTime() - before)).toBeLessThan(10 * 60_000);
      });

      it('puts streams of unknown and of declared size', async () => {
        const p = ns();
        const data = randomBytes(300 * 1024 + 7);
        expect((await store.put(`${p}/unknown`, chunked(data))).size).toBe(data.length);
        const declared = await store.put(`${p}/declared`, chunked(data), { size: data.length });
        expect(declared.size).toBe(data.length);
        expectBytes(await store.getBytes(`${p}/unknown`), data);
        expectBytes(await store.getBytes(`${p}/declared`), data);
      });

      it('stores empty objects from a Buffer and from a stream', async () => {
        const p = ns();
        await store.put(`${p}/buf`, Buffer.alloc(0));
        await store.put(`${p}/stream`, Readable.from([]));
        for (const key of [`${p}/buf`, `${p}/stream`]) {
          expect((await store.head(key)).size).toBe(0);
          expect((await store.getBytes(key)).length).toBe(0);
          const got = await store.get(key);
          expect([got.size, got.length]).toEqual([0, 0]);
          expect((await collect(got.body)).length).toBe(0);
        }
      });

      it(
        'round-trips a 20 MiB stream without buffering it (multipart on S3)',
        async () => {
          const p = ns();
          for (const [key, size] of [
            [`${p}/unknown-size`, undefined],
            [`${p}/declared-size`, 20 * MiB],
          ] as const) {
            const src = generated(20 * MiB);
            const info = await store.put(key, src.stream, size ? { size } : {});
            expect(info.size).toBe(20 * MiB);
            expect((await store.head(key)).size).toBe(20 * MiB);
            const got = await store.get(key);
            expect(got.length).toBe(20 * MiB);
            expect(await sha256(got.body)).toBe(src.digest());
          }
        },
        SLOW,
      );

      it('rejects a stream longer or shorter than its declared size and stores nothing', async () => {
        const p = ns();
        await expect(
          store.put(`${p}/long`, chunked(randomBytes(1000)), { size: 999 }),
        ).rejects.toThrow();
        await expect(
          store.put(`${p}/short`, chunked(randomBytes(1000)), { size: 1001 }),
        ).rejects.toThrow();
        await expectNotFound(store.head(`${p}/long`));
        await expectNotFound(store.head(`${p}/short`));
      });

      it('overwrites atomically: readers see the old object until the new one is complete', async () => {
        const key = `${ns()}/obj`;
        const old = randomBytes(64 * 1024);
        const neu = randomBytes(96 * 1024);
        await store.put(key, old);
        const body = new PassThrough();
        const writing = store.put(key, body);
        body.write(neu.subarray(0, 48 * 1024));
        await sleep(100);
        expectBytes(await store.getBytes(key), old);
        expect((await store.head(key)).size).toBe(old.length);
        body.end(neu.subarray(48 * 1024));
        expect((await writing).size).toBe(neu.length);
        expectBytes(await store.getBytes(key), neu);
      });

      it('leaves nothing visible when the stream fails midway', async () => {
        const p = ns();
        await expect(store.put(`${p}/new`, failing(randomBytes(512 * 1024)))).rejects.toThrow();
        await expectNotFound(store.head(`${p}/new`));
        expect((await store.list(`${p}/`)).objects).toEqual([]);
      });

      it('leaves nothing visible when the writer aborts the stream', async () => {
        const p = ns();
        for (const [key, opts] of [
          [`${p}/unknown`, {}],
          [`${p}/declared`, { size: 1024 * 1024 }],
        ] as const) {
          const body = new PassThrough();
          const writing = store.put(key, body, opts);
          body.write(randomBytes(256 * 1024));
          await sleep(50);
          body.destroy();
          await expect(writing).rejects.toThrow();
          await expectNotFound(store.head(key));
        }
      });

      it('keeps the old object intact when an overwrite fails midway', async () => {
        const key = `${ns()}/obj`;
        const old = randomBytes(10_000);
        await store.put(key, old);
        await expect(store.put(key, failing(randomBytes(512 * 1024)))).rejects.toThrow();
        await expect(
          store.put(key, failing(randomBytes(512 * 1024)), { size: 1024 * 1024 }),
        ).rejects.toThrow();
        expectBytes(await store.getBytes(key), old);
      });

      it(
        'leaves nothing visible when a large stream fails after several parts',
        async () => {
          const key = `${ns()}/big`;
          await expect(store.put(key, failing(randomBytes(12 * MiB)))).rejects.toThrow();
          await expectNotFound(store.head(key));
        },
        SLOW,
      );
    });

    describe('ranges', () => {
      const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
      let key: string;
      beforeAll(async () => {
        key = `${ns()}/hundred`;
        await store.put(key, data);
      });

      it.each([
        [{ start: 0, end: 9 }, 0, 10],
        [{ start: 90 }, 90, 100],
        [{ start: 95, end: 1000 }, 95, 100],
        [{ start: 99, end: 99 }, 99, 100],
        [{ start: 0 }, 0, 100],
      ])('reads range %j', async (range, from, to) => {
        const got = await store.get(key, range);
        expect(got.size).toBe(100);
        expect(got.length).toBe(to - from);
        expectBytes(await collect(got.body), data.subarray(from, to));
      });

      it('refuses a range starting at or beyond the end, or ending before its start', async () => {
        for (const range of [{ start: 100 }, { start: 500, end: 600 }, { start: 10, end: 5 }]) {
          const err: unknown = await store.get(key, range).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(InvalidRangeError);
          expect((err as InvalidRangeError).size).toBe(100);
        }
      });

      it('reports NotFound for a range of a missing object', async () => {
        await expectNotFound(store.get(`${ns()}/missing`, { start: 0, end: 1 }));
      });
    });

    describe('missing objects', () => {
      it('get, getBytes, head, copy and concat throw NotFoundError; delete does not', async () => {
        const p = ns();
        await store.put(`${p}/present`, Buffer.from('x'));
        await expectNotFound(store.get(`${p}/missing`));
        await expectNotFound(store.getBytes(`${p}/missing`));
        await expectNotFound(store.head(`${p}/missing`));
        await expectNotFound(store.copy(`${p}/missing`, `${p}/dst`));
        await expectNotFound(store.concat([`${p}/present`, `${p}/missing`], `${p}/dst`));
        await expectNotFound(store.head(`${p}/dst`));
        await expect(store.delete(`${p}/missing`)).resolves.toBeUndefined();
      });

      it('does not treat a prefix of other keys as an object', async () => {
        const p = ns();
        await store.put(`${p}/dir/file`, Buffer.from('x'));
        await expectNotFound(store.head(`${p}/dir`));
        await expectNotFound(store.get(`${p}/dir`));
        await expectNotFound(store.getBytes(`${p}/dir`));
      });
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
        for (const pg of pages)
          expect(pg.objects.length + pg.prefixes.length).toBeLessThanOrEqual(4);
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
          await expect(putChecked(store, key, h.stream, h.check)).rejects.toBeInstanceOf(
            CheckFailed,
          );
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
  });
}

/** Buffer equality without jest's element-by-element diff (seconds for 300 KiB). */
function expectBytes(actual: Buffer, expected: Buffer): void {
  if (actual.equals(expected)) return;
  let at = 0;
  while (at < actual.length && at < expected.length && actual[at] === expected[at]) at++;
  throw new Error(
    `bytes differ: got ${actual.length}, expected ${expected.length}, first difference at offset ${at}`,
  );
}

async function expectNotFound(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(NotFoundError);
}

async function listPages(
  store: ObjectStore,
  prefix: string,
  opts: ListOptions,
): Promise<{ objects: ObjectInfo[]; prefixes: string[]; cursor?: string }[]> {
  const pages = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, { ...opts, cursor });
    pages.push(page);
    cursor = page.cursor;
    if (pages.length > 100) throw new Error('listing does not terminate');
  } while (cursor !== undefined);
  return pages;
}

/** A stream delivering `data` in 64 KiB chunks. */
function chunked(data: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
    })(),
  );
}

/** A stream that delivers `data` and then fails. */
function failing(data: Buffer): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
      await sleep(10);
      throw new Error('client went away');
    })(),
  );
}

/** `total` random bytes generated on the fly; `digest()` is their sha256 once consumed. */
function generated(total: number): { stream: Readable; digest(): string } {
  const hash = createHash('sha256');
  let hex: string | undefined;
  const stream = Readable.from(
    (function* () {
      for (let sent = 0; sent < total; sent += MiB) {
        const chunk = randomBytes(Math.min(MiB, total - sent));
        hash.update(chunk);
        yield chunk;
      }
      hex = hash.digest('hex');
    })(),
  );
  return {
    stream,
    digest: () => {
      if (hex === undefined) throw new Error('stream not fully consumed');
      return hex;
    },
  };
}

async function sha256(body: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function digestOf(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `instanceof Date` fails across realms (jest's sandbox vs node's fs). */
function isDate(d: unknown): boolean {
  return (
    Object.prototype.toString.call(d) === '[object Date]' && !Number.isNaN((d as Date).getTime())
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
