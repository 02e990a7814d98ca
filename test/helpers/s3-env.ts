import type { S3StoreOptions } from '@meridian/storage';
import { CEPH_INSTALL_HINT, newBucket, type S3Endpoint } from './ceph';

/**
 * The S3 endpoint of this integration run: the Ceph RGW that the jest global setup started,
 * or the one named by `MERIDIAN_TEST_S3_ENDPOINT` (credentials from `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, region from `AWS_REGION`). Undefined when there is none.
 */
export function testS3(): S3Endpoint | undefined {
  const endpoint = process.env.MERIDIAN_TEST_S3_ENDPOINT;
  if (!endpoint) return undefined;
  return {
    endpoint,
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? '',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? '',
    region: process.env.AWS_REGION ?? 'us-east-1',
  };
}

/** Like `testS3()`, but fails loudly (a missing S3 server is a broken setup, never a skip). */
export function requireTestS3(): S3Endpoint {
  const s3 = testS3();
  if (!s3) {
    throw new Error(
      `no S3 endpoint for the integration tests: install Ceph RGW (${CEPH_INSTALL_HINT}) so the ` +
        'jest global setup starts one, or set MERIDIAN_TEST_S3_ENDPOINT',
    );
  }
  return s3;
}

/** Creates a fresh, uniquely named bucket on the test endpoint. */
export async function newTestBucket(): Promise<string> {
  return newBucket(requireTestS3());
}

/** `S3StoreOptions` for `bucket` on the test endpoint, explicit credentials included. */
export function testS3Options(bucket: string, extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  const s3 = requireTestS3();
  return {
    bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    ...extra,
  };
}
