/** The S3 driver's writes and bulk deletes: one PutObject, a multipart upload, a prefix wipe. */
import {
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { UnavailableError } from './errors';
import { streamed } from './young-buffers';

/**
 * One PutObject; a body stream that fails aborts the request, so nothing is stored. SDK errors
 * are left for the caller to map.
 */
export async function putOnce(
  client: S3Client,
  Bucket: string,
  Key: string,
  body: Readable | Buffer,
  size: number,
  contentType: string | undefined,
): Promise<void> {
  const abort = new AbortController();
  let failure: Error | undefined;
  const onError = (e: unknown) => {
    failure ??= e instanceof Error ? e : new Error(String(e));
    abort.abort();
  };
  // A body destroyed without an error (caller aborted) must fail the request too, or the
  // server would wait for the missing bytes.
  const onClose = () => {
    if (!(body as Readable).readableEnded) onError(new Error('body closed before its end'));
  };
  if (!Buffer.isBuffer(body)) body.on('error', onError).on('close', onClose);
  try {
    const cmd = new PutObjectCommand({
      Bucket,
      Key,
      Body: body,
      ContentLength: size,
      ContentType: contentType,
    });
    await client.send(cmd, { abortSignal: abort.signal });
  } catch (e) {
    throw failure ?? e;
  } finally {
    if (!Buffer.isBuffer(body)) body.off('error', onError).off('close', onClose);
  }
  if (failure !== undefined) throw failure;
}

/**
 * lib-storage `Upload`: multipart (or one PutObject when the body fits in a part); aborted on
 * error. Resolves to the bytes stored; SDK errors are left for the caller to map.
 */
export async function putMultipart(
  client: S3Client,
  Bucket: string,
  Key: string,
  body: Readable,
  opts: { partSize: number; queueSize: number; contentType: string | undefined },
): Promise<number> {
  let size = 0;
  const counted = Readable.from(
    (async function* () {
      for await (const chunk of body) {
        size += (chunk as Buffer).length;
        streamed((chunk as Buffer).length);
        yield chunk as Buffer;
      }
    })(),
    { objectMode: false },
  );
  const upload = new Upload({
    client,
    params: { Bucket, Key, Body: counted, ContentType: opts.contentType },
    partSize: opts.partSize,
    queueSize: opts.queueSize,
    leavePartsOnError: false,
  });
  await upload.done();
  return size;
}

/**
 * Deletes every object under `Prefix`, a page of `batchSize` (<= 1000) at a time with
 * DeleteObjects. `label` names the prefix in errors; SDK errors are left for the caller to map.
 */
export async function deleteAllUnder(
  client: S3Client,
  Bucket: string,
  Prefix: string,
  batchSize: number,
  label: string,
): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken: token, MaxKeys: batchSize }),
    );
    const objects = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (objects.length > 0) {
      const out = await client.send(
        new DeleteObjectsCommand({ Bucket, Delete: { Objects: objects, Quiet: true } }),
      );
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        throw new UnavailableError(
          `s3 deletePrefix ${label}: ${failed.length} objects not deleted (${failed[0]?.Code ?? 'unknown'})`,
        );
      }
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}
