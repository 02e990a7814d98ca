// The SDK is a dependency of @meridian/storage, not of the workspace root: use that copy.
import {
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '../packages/storage/node_modules/@aws-sdk/client-s3';
import { randomBytes, randomUUID } from 'node:crypto';
import { digestOf, parseDigest } from '@meridian/oci';
import { Layout, S3Store, openStore } from '@meridian/storage';
import { sweepStaleS3 } from '../packages/storage/src/s3-sweep';
import {
  incompleteUploads,
  newTestBucket,
  requireTestS3,
  testS3Location,
  testS3Options,
} from './helpers/s3-env';

/**
 * What a process killed mid-write leaves on S3, made with raw SDK calls (a kill leaves exactly
 * this server state): a multipart upload with one part sent, or a complete staging object.
 */
async function abandonUpload(raw: S3Store, key: string): Promise<void> {
  const { UploadId } = await raw.client.send(
    new CreateMultipartUploadCommand({ Bucket: raw.bucket, Key: key }),
  );
  await raw.client.send(
    new UploadPartCommand({
      Bucket: raw.bucket,
      Key: key,
      UploadId,
      PartNumber: 1,
      Body: randomBytes(64 * 1024),
    }),
  );
}

async function putRaw(raw: S3Store, key: string): Promise<void> {
  await raw.client.send(
    new PutObjectCommand({ Bucket: raw.bucket, Key: key, Body: Buffer.from(key) }),
  );
}

/** Whether HeadObject finds `key` (a full key, prefix included). */
async function exists(raw: S3Store, key: string): Promise<boolean> {
  return raw.head(key).then(
    () => true,
    (e: unknown) => {
      if ((e as Error).name === 'NotFoundError') return false;
      throw e;
    },
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('S3 crash-leftover sweep against Ceph RGW', () => {
  let bucket: string;
  /** Whole-bucket client; only `client.send` and `head` are used, which never start a sweep. */
  let raw: S3Store;
  const stagingUpload = `region-a/${Layout.staging(randomUUID())}`;
  const blobUpload = `region-a/${Layout.blobData(parseDigest(digestOf('big layer')))}`;
  const sessionUpload = `region-a/${Layout.uploadChunk(randomUUID(), 0)}`;
  const stagedObject = `region-a/${Layout.staging(randomUUID())}`;
  const kept = 'region-a/repositories/app/_manifests/tags/v1/current';
  // Another store in the same bucket whose prefix merely starts with the same letters.
  const otherUpload = `region-ab/${Layout.staging(randomUUID())}`;
  const otherObject = `region-ab/${Layout.staging(randomUUID())}`;
  const uploadKeys = async (prefix: string) =>
    (await incompleteUploads(testS3Location(bucket), prefix)).map((u) => u.key).sort();

  beforeAll(async () => {
    bucket = await newTestBucket();
    raw = new S3Store(testS3Options(bucket));
    for (const key of [stagingUpload, blobUpload, sessionUpload, otherUpload]) {
      await abandonUpload(raw, key);
    }
    for (const key of [stagedObject, kept, otherObject]) await putRaw(raw, key);
  });
  afterAll(async () => {
    await raw.close();
  });

  it('leaves leftovers younger than staleTempMs (default 24 h) alone', async () => {
    const driver = new S3Store(testS3Options(bucket, { prefix: 'region-a' }));
    try {
      expect(driver.sweeping).toBeUndefined();
      await driver.put('fresh', Buffer.from('x'));
      expect(driver.sweeping).toBeDefined();
      await expect(driver.sweeping).resolves.toEqual({ aborted: 0, deleted: 0 });
      expect(await uploadKeys('region-a/')).toEqual(
        [stagingUpload, blobUpload, sessionUpload].sort(),
      );
      expect(await exists(raw, stagedObject)).toBe(true);
    } finally {
      await driver.close();
    }
  });

  it('first use aborts stale uploads and deletes stale staging objects, in its prefix only', async () => {
    await sleep(1100); // S3 timestamps have 1 s resolution
    const { endpoint, region } = requireTestS3();
    const store = await openStore(
      `s3://${bucket}/region-a?endpoint=${encodeURIComponent(endpoint)}&region=${region}`,
      { staleTempMs: 1000 },
    );
    const driver = store.driver as S3Store;
    try {
      expect(driver.sweeping).toBeUndefined();
      await store.ping();
      await expect(driver.sweeping).resolves.toEqual({ aborted: 3, deleted: 1 });

      // What an operator sees: no incomplete upload left, the session's included (its purge
      // aborts none, and a session this old has long expired).
      expect(await uploadKeys('region-a/')).toEqual([]);
      expect(await exists(raw, stagedObject)).toBe(false);
      expect(await exists(raw, kept)).toBe(true);
      expect(await exists(raw, 'region-a/fresh')).toBe(true);
      // The other store's leftovers are its own business.
      expect(await uploadKeys('region-ab/')).toEqual([otherUpload]);
      expect(await exists(raw, otherObject)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('pages through many uploads and staging objects', async () => {
    const stale = Array.from({ length: 3 }, () => `region-c/${Layout.staging(randomUUID())}`);
    const session = `region-c/${Layout.uploadChunk(randomUUID(), 0)}`;
    for (const key of [...stale, session]) await abandonUpload(raw, key);
    for (const key of stale) await putRaw(raw, key);
    await sleep(1100);
    // One upload or object per request: every marker and continuation token is followed; the
    // session's upload is aborted with the rest.
    await expect(sweepStaleS3(raw.client, bucket, 'region-c/', 1000, 1)).resolves.toEqual({
      aborted: 4,
      deleted: 3,
    });
    expect(await uploadKeys('region-c/')).toEqual([]);
    for (const key of stale) expect(await exists(raw, key)).toBe(false);
  });

  it('never fails a request when the sweep fails', async () => {
    const driver = new S3Store(testS3Options(bucket, { prefix: 'region-d', staleTempMs: 1 }));
    driver.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListMultipartUploadsCommand') {
          throw Object.assign(new Error('denied'), {
            name: 'AccessDenied',
            $metadata: { httpStatusCode: 403 },
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'denyListUploads' },
    );
    try {
      await expect(driver.put('x', Buffer.from('1'))).resolves.toMatchObject({ size: 1 });
      await expect(driver.sweeping).resolves.toBeUndefined();
      expect((await driver.getBytes('x')).toString()).toBe('1');
      await expect(driver.sweepStale()).rejects.toMatchObject({ name: 'UnavailableError' });
    } finally {
      await driver.close();
    }
  });

  it('refuses a staleTempMs that would sweep writes in progress', () => {
    expect(() => new S3Store(testS3Options(bucket, { staleTempMs: 0 }))).toThrow(/staleTempMs/);
  });
});
