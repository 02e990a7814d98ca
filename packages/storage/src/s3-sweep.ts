import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { UnavailableError } from './errors';
import { Layout } from './layout';
import { s3Status } from './s3-errors';

/** What one sweep removed. */
export interface StaleSweep {
  /** Incomplete multipart uploads aborted. */
  aborted: number;
  /** Staging objects deleted. */
  deleted: number;
}

/** The staging prefix (`_replication/staging/`), from `Layout` so the two cannot drift. */
const STAGING = Layout.staging('');

/**
 * Removes what a process killed mid-write leaves under `prefix` (the store's, `''` or ending
 * with `/`) when it is older than `staleMs`: incomplete multipart uploads (aborted) and
 * staging objects that were never moved into place (deleted). Uploads under `_uploads/` are
 * included: a session's purge deletes its objects but aborts no multipart upload, so one that
 * a crash left mid-chunk would hold its parts forever, and a session expires after an idle
 * timeout (default 1 h) far shorter than `staleMs`. Objects other than staging ones are never
 * deleted, and another prefix of the bucket is never touched. SDK errors are thrown as they
 * are. `pageSize`: uploads or objects listed per request (default 1000, the S3 maximum).
 */
export async function sweepStaleS3(
  client: S3Client,
  bucket: string,
  prefix: string,
  staleMs: number,
  pageSize = 1000,
): Promise<StaleSweep> {
  const cutoff = Date.now() - staleMs;
  return {
    aborted: await abortStaleUploads(client, bucket, prefix, cutoff, pageSize),
    deleted: await deleteStaleStaging(client, bucket, prefix + STAGING, cutoff, pageSize),
  };
}

/** Aborts every incomplete multipart upload of exactly `key` (a full key); returns how many. */
export async function abortUploadsOf(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<number> {
  return abortStaleUploads(client, bucket, key, Date.now() + 1, 1000, key);
}

async function abortStaleUploads(
  client: S3Client,
  bucket: string,
  prefix: string,
  cutoff: number,
  pageSize: number,
  exactKey?: string,
): Promise<number> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const page = await client.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
        MaxUploads: pageSize,
      }),
    );
    for (const u of page.Uploads ?? []) {
      if (!u.Key || !u.UploadId || !u.Initiated) continue;
      if (u.Initiated.getTime() >= cutoff) continue;
      if (exactKey !== undefined && u.Key !== exactKey) continue;
      try {
        await client.send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }),
        );
        aborted++;
      } catch (e) {
        if (s3Status(e) !== 404) throw e; // NoSuchUpload: another process got there first
      }
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
  return aborted;
}

async function deleteStaleStaging(
  client: S3Client,
  bucket: string,
  staging: string,
  cutoff: number,
  pageSize: number,
): Promise<number> {
  let deleted = 0;
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: staging,
        ContinuationToken: token,
        MaxKeys: pageSize,
      }),
    );
    const stale = (page.Contents ?? []).flatMap((o) =>
      o.Key && o.LastModified && o.LastModified.getTime() < cutoff ? [{ Key: o.Key }] : [],
    );
    if (stale.length > 0) {
      const out = await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: stale, Quiet: true } }),
      );
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        throw new UnavailableError(
          `${failed.length} staging objects not deleted (${failed[0]?.Code ?? 'unknown'})`,
        );
      }
      deleted += stale.length;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return deleted;
}
