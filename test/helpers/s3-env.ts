// The SDK is a dependency of @meridian/storage, not of the workspace root: use that copy.
import {
  ListMultipartUploadsCommand,
  ListPartsCommand,
} from '../../packages/storage/node_modules/@aws-sdk/client-s3';
import { S3Store, parseS3Url, type S3StoreOptions } from '@meridian/storage';
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

/**
 * The test endpoint under another name for the same server (`127.0.0.1` ↔ `localhost`). To an
 * S3 client that is another endpoint, as a region on another S3 service would be: stores on it
 * and on `testS3().endpoint` cannot copy between each other server-side.
 */
export function testS3OtherName(): string {
  const url = new URL(requireTestS3().endpoint);
  const other = { '127.0.0.1': 'localhost', localhost: '127.0.0.1' }[url.hostname];
  if (!other) {
    throw new Error(
      `cannot name the test S3 endpoint ${url.host} another way (only 127.0.0.1 and localhost)`,
    );
  }
  url.hostname = other;
  return url.origin;
}

/** The `s3://` storage location of `bucket` on the test server, reached through `endpoint`. */
export function testS3Location(bucket: string, endpoint = requireTestS3().endpoint): string {
  const { region } = requireTestS3();
  return `s3://${bucket}?endpoint=${encodeURIComponent(endpoint)}&region=${region}`;
}

/** A multipart upload that was started and neither completed nor aborted. */
export interface IncompleteUpload {
  /** The object key it would create, relative to the store's prefix. */
  key: string;
  uploadId: string;
  /** Parts uploaded so far. */
  parts: number;
}

/**
 * Multipart uploads in progress (or abandoned) under `prefix` in the bucket of an `s3://`
 * storage location: bytes a writer has sent but that no object shows yet.
 */
export async function incompleteUploads(
  location: string,
  prefix: string,
): Promise<IncompleteUpload[]> {
  const s3 = new S3Store(parseS3Url(location));
  try {
    const out: IncompleteUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await s3.client.send(
        new ListMultipartUploadsCommand({
          Bucket: s3.bucket,
          Prefix: s3.prefix + prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId) continue;
        const parts = await s3.client.send(
          new ListPartsCommand({ Bucket: s3.bucket, Key: u.Key, UploadId: u.UploadId }),
        );
        out.push({
          key: u.Key.slice(s3.prefix.length),
          uploadId: u.UploadId,
          parts: parts.Parts?.length ?? 0,
        });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return out;
  } finally {
    await s3.close();
  }
}
