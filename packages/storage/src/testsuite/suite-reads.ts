/// <reference types="jest" />
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { InvalidRangeError } from '../errors';
import type { ObjectStore } from '../object-store';
import {
  expectBytes,
  expectNotFound,
  chunked,
  failing,
  generated,
  sha256,
  collect,
  isDate,
  sleep,
  MiB,
  SLOW,
  type SuiteContext,
} from './suite-helpers';
/** Part of `describeObjectStore`: Reads and writes, ranges, missing objects. */
export function describeReads(s: SuiteContext): void {
  let store: ObjectStore;
  const ns = () => s.ns();
  beforeAll(() => {
    store = s.store();
  });

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
}
