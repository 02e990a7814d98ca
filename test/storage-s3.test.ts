import { randomBytes } from 'node:crypto';
import { BaseStore, S3Store, type S3StoreOptions } from '@meridian/storage';
import { describeObjectStore } from '../packages/storage/src/testsuite/describe-object-store';
import { newTestBucket, testS3Options } from './helpers/s3-env';

const MiB = 1024 * 1024;

/** A store on a fresh bucket, under a key prefix so the driver's prefix handling is exercised. */
async function s3Store(
  extra: Partial<S3StoreOptions> = {},
): Promise<{ store: BaseStore; driver: S3Store }> {
  const driver = new S3Store(
    testS3Options(await newTestBucket(), { prefix: 'region-a', partSize: 5 * MiB, ...extra }),
  );
  return { store: new BaseStore(driver), driver };
}

describeObjectStore('s3', async () => {
  const { store } = await s3Store();
  const { store: other } = await s3Store({ prefix: 'region-b' });
  return {
    store,
    other,
    presign: true,
    cleanup: async () => {
      await store.close();
      await other.close();
    },
  };
});

describe('S3Store against Ceph RGW', () => {
  let store: BaseStore;
  let driver: S3Store;
  /** S3 commands sent, by name, recorded by a client middleware. */
  let sent: string[];
  beforeAll(async () => {
    ({ store, driver } = await s3Store({ deleteBatchSize: 7, maxCopyObjectSize: 6 * MiB }));
    driver.client.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
  });
  beforeEach(() => {
    sent = [];
  });
  afterAll(async () => {
    await store.close();
  });

  it('concatenates two >= 5 MiB objects server-side with UploadPartCopy', async () => {
    const a = randomBytes(5 * MiB);
    const b = randomBytes(5 * MiB + 123);
    await store.put('concat/a', a);
    await store.put('concat/b', b);
    sent = [];
    const info = await store.concat(['concat/a', 'concat/b'], 'concat/ab');
    expect(info.size).toBe(a.length + b.length);
    expect(sent.filter((c) => c === 'UploadPartCopyCommand')).toHaveLength(2);
    expect(sent).not.toContain('GetObjectCommand');
    expect(sent).not.toContain('UploadPartCommand');
    expect((await store.getBytes('concat/ab')).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('streams small sources into one upload instead', async () => {
    await store.put('small/a', Buffer.from('abc'));
    await store.put('small/b', Buffer.from('def'));
    sent = [];
    await store.concat(['small/a', 'small/b'], 'small/ab');
    expect(sent).not.toContain('UploadPartCopyCommand');
    expect((await store.getBytes('small/ab')).toString()).toBe('abcdef');
  });

  it('copies objects above maxCopyObjectSize in parts', async () => {
    const data = randomBytes(13 * MiB);
    await store.put('big/src', data);
    sent = [];
    await store.copy('big/src', 'big/dst');
    expect(sent).not.toContain('CopyObjectCommand');
    // 13 MiB in parts of at least partSize (5 MiB): two ranges of 6.5 MiB.
    expect(sent.filter((c) => c === 'UploadPartCopyCommand')).toHaveLength(2);
    expect((await store.getBytes('big/dst')).equals(data)).toBe(true);
  });

  it('deletes a prefix across several list/delete batches', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `many/${String(i).padStart(2, '0')}`);
    await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
    await store.put('many-sibling', Buffer.from('keep'));
    sent = [];
    await store.deletePrefix('many/');
    expect(sent.filter((c) => c === 'DeleteObjectsCommand').length).toBeGreaterThanOrEqual(5);
    expect(await store.list('many/')).toEqual({ objects: [], prefixes: [] });
    expect((await store.getBytes('many-sibling')).toString()).toBe('keep');
  });

  it('keeps keys under its prefix and strips it in listings', async () => {
    await store.put('pfx/x', Buffer.from('x'));
    const bare = new S3Store({ ...testS3Options(driver.bucket) });
    try {
      expect((await bare.head('region-a/pfx/x')).size).toBe(1);
    } finally {
      await bare.close();
    }
    expect((await store.list('pfx/')).objects.map((o) => o.key)).toEqual(['pfx/x']);
  });

  it('reports a missing bucket as unavailable, without credentials in the message', async () => {
    const opts = testS3Options('meridian-no-such-bucket');
    const missing = new BaseStore(new S3Store(opts));
    try {
      const err: unknown = await missing.ping().catch((e: unknown) => e);
      expect((err as Error).name).toBe('UnavailableError');
      // (HEAD cannot tell a missing bucket from a missing key: its 404 has no body.)
      const head: unknown = await missing.getBytes('x').catch((e: unknown) => e);
      expect((head as Error).name).toBe('UnavailableError');
      for (const e of [err, head]) {
        expect((e as Error).message).not.toContain(opts.credentials?.secretAccessKey ?? '?');
        expect((e as Error).message).not.toContain(opts.credentials?.accessKeyId ?? '?');
      }
    } finally {
      await missing.close();
    }
  });

  it('reports an unreachable endpoint as unavailable', async () => {
    const down = new BaseStore(
      new S3Store({
        ...testS3Options('whatever'),
        endpoint: 'http://127.0.0.1:9',
        connectTimeoutMs: 1000,
      }),
    );
    try {
      await expect(down.ping()).rejects.toMatchObject({ name: 'UnavailableError' });
      await expect(down.getBytes('x')).rejects.toMatchObject({ name: 'UnavailableError' });
    } finally {
      await down.close();
    }
  });
});
