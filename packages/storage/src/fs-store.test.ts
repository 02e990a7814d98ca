import { mkdtemp, readdir, rm, writeFile, utimes, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { register } from 'prom-client';
import { BaseStore } from './base-store';
import {
  InvalidKeyError,
  NotFoundError,
  StorageFullError,
  UnavailableError,
  UnsupportedError,
} from './errors';
import { FsStore } from './fs-store';
import type { ObjectStore } from './object-store';
import { openStore } from './open-store';
import { S3Store } from './s3-store';
import { describeObjectStore } from './testsuite/describe-object-store';

async function tempRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'meridian-fs-'));
}

describeObjectStore('fs', async () => {
  const root = await tempRoot();
  const store = new BaseStore(new FsStore({ root: join(root, 'a') }));
  const other = new BaseStore(new FsStore({ root: join(root, 'b') }));
  return {
    store,
    other,
    cleanup: async () => {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
});

describe('FsStore', () => {
  let root: string;
  let store: BaseStore;
  beforeEach(async () => {
    root = await tempRoot();
    store = new BaseStore(new FsStore({ root }));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  function failing(): Readable {
    return Readable.from(
      (async function* () {
        yield Buffer.alloc(100_000, 1);
        await new Promise((r) => setTimeout(r, 5));
        throw new Error('boom');
      })(),
    );
  }

  it('removes the temp file when a stream fails', async () => {
    await expect(store.put('a/b', failing())).rejects.toThrow(/boom/);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    expect(await readdir(root)).toEqual(['.tmp']);
  });

  it('reserves .tmp and never lists it', async () => {
    await expect(store.put('.tmp/x', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.deletePrefix('.tmp/')).rejects.toBeInstanceOf(InvalidKeyError);
    await store.put('.tmpx', Buffer.from('x'));
    expect(await store.list('', { delimiter: '/' })).toMatchObject({ prefixes: [] });
    expect((await store.list('.t')).objects.map((o) => o.key)).toEqual(['.tmpx']);
    expect(await store.list('.tmp/')).toEqual({ objects: [], prefixes: [] });
  });

  it('refuses a key that is also a prefix of other keys', async () => {
    await store.put('a/b', Buffer.from('x'));
    await expect(store.put('a', Buffer.from('y'))).rejects.toBeInstanceOf(UnsupportedError);
    await expect(store.put('a/b/c', Buffer.from('y'))).rejects.toBeInstanceOf(UnsupportedError);
    expect((await store.getBytes('a/b')).toString()).toBe('x');
  });

  it('removes emptied directories after deletes', async () => {
    await store.put('a/b/c/d', Buffer.from('x'));
    await store.put('a/e', Buffer.from('x'));
    await store.delete('a/b/c/d');
    expect((await readdir(root)).sort()).toEqual(['.tmp', 'a']);
    expect(await readdir(join(root, 'a'))).toEqual(['e']);
    await store.deletePrefix('a/');
    expect(await readdir(root)).toEqual(['.tmp']);
  });

  it('does not list empty directories as prefixes', async () => {
    await mkdir(join(root, 'p', 'empty', 'deeper'), { recursive: true });
    await store.put('p/full/x', Buffer.from('x'));
    expect(await store.list('p/', { delimiter: '/' })).toEqual({
      objects: [],
      prefixes: ['p/full/'],
    });
  });

  it('sweeps stale temp files left by a crash', async () => {
    await mkdir(join(root, '.tmp'), { recursive: true });
    await writeFile(join(root, '.tmp', 'stale'), 'x');
    await writeFile(join(root, '.tmp', 'fresh'), 'x');
    const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await utimes(join(root, '.tmp', 'stale'), old, old);
    const fresh = new FsStore({ root });
    await fresh.ping();
    for (let i = 0; i < 50 && (await readdir(join(root, '.tmp'))).includes('stale'); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await readdir(join(root, '.tmp'))).toEqual(['fresh']);
  });

  it('reports an unusable root as unavailable', async () => {
    await writeFile(join(root, 'file'), 'x');
    const broken = new BaseStore(new FsStore({ root: join(root, 'file', 'sub') }));
    await expect(broken.ping()).rejects.toBeInstanceOf(UnavailableError);
  });
});

describe('BaseStore', () => {
  const failingDriver = (error: Error): ObjectStore =>
    new Proxy({ name: 'fake' } as ObjectStore, {
      get: (target, prop) => (prop === 'name' ? target.name : () => Promise.reject(error)),
    });

  it('maps ENOSPC and EDQUOT to StorageFullError and anything else to UnavailableError', async () => {
    const full = new BaseStore(
      failingDriver(Object.assign(new Error('no space'), { code: 'ENOSPC' })),
    );
    await expect(full.put('a', Buffer.from('x'))).rejects.toBeInstanceOf(StorageFullError);
    const quota = new BaseStore(
      failingDriver(Object.assign(new Error('quota'), { code: 'EDQUOT' })),
    );
    await expect(quota.put('a', Buffer.from('x'))).rejects.toBeInstanceOf(StorageFullError);
    const odd = new BaseStore(failingDriver(new TypeError('weird')));
    const err: unknown = await odd.head('a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).cause).toBeInstanceOf(TypeError);
    const missing = new BaseStore(failingDriver(new NotFoundError('a')));
    await expect(missing.head('a')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('declines a server-side copy between different drivers', async () => {
    const root = await tempRoot();
    try {
      const fsStore = new BaseStore(new FsStore({ root }));
      const s3 = new BaseStore(new S3Store({ bucket: 'bkt', endpoint: 'http://127.0.0.1:9' }));
      expect(await fsStore.copyFrom(s3, 'a', 'b')).toBe(false);
      expect(await s3.copyFrom(fsStore, 'a', 'b')).toBe(false);
      await s3.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('records operations, latency and bytes', async () => {
    const root = await tempRoot();
    try {
      const store = new BaseStore(new FsStore({ root }));
      const value = async (name: string, labels: Record<string, string>) => {
        const metric = await register.getSingleMetric(name)?.get();
        const match = metric?.values.find((v) =>
          Object.entries(labels).every(([k, l]) => v.labels[k] === l),
        );
        return match?.value ?? 0;
      };
      const written = await value('meridian_storage_bytes_written_total', { driver: 'fs' });
      const read = await value('meridian_storage_bytes_read_total', { driver: 'fs' });
      const notFound = await value('meridian_storage_operations_total', {
        driver: 'fs',
        operation: 'head',
        status: 'not_found',
      });
      await store.put('m/x', Buffer.alloc(300_000, 1));
      const got = await store.get('m/x');
      expect(await value('meridian_storage_bytes_read_total', { driver: 'fs' })).toBe(read);
      for await (const _ of got.body) void _;
      await expect(store.head('m/missing')).rejects.toBeInstanceOf(NotFoundError);
      expect(await value('meridian_storage_bytes_written_total', { driver: 'fs' })).toBe(
        written + 300_000,
      );
      expect(await value('meridian_storage_bytes_read_total', { driver: 'fs' })).toBe(
        read + 300_000,
      );
      expect(
        await value('meridian_storage_operations_total', {
          driver: 'fs',
          operation: 'head',
          status: 'not_found',
        }),
      ).toBe(notFound + 1);
      const text = await register.getSingleMetricAsString(
        'meridian_storage_operation_duration_seconds',
      );
      expect(text).toContain(
        'meridian_storage_operation_duration_seconds_count{driver="fs",operation="put"}',
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('openStore', () => {
  it('opens fs for a path or file:// URL and s3 for s3://', async () => {
    const root = await tempRoot();
    try {
      const byPath = await openStore(root);
      expect(byPath).toBeInstanceOf(BaseStore);
      expect(byPath.driver).toBeInstanceOf(FsStore);
      await byPath.put('x', Buffer.from('1'));
      const byUrl = await openStore(`file://${root}`);
      expect((await byUrl.getBytes('x')).toString()).toBe('1');
      const s3 = await openStore('s3://bucket/pre?endpoint=http://127.0.0.1:1&region=us-east-1', {
        partSize: 8 * 1024 * 1024,
        queueSize: undefined,
      });
      expect(s3.driver).toBeInstanceOf(S3Store);
      expect((s3.driver as S3Store).prefix).toBe('pre/');
      await s3.close();
      await expect(openStore('ftp://host/x')).rejects.toThrow(/unsupported/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
