/** Planning and running of multipart copies: S3's part-size rules in one place. */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { UnavailableError } from './errors';

const MiB = 1024 * 1024;
/** S3's minimum size of every part but the last. */
export const S3_MIN_PART_SIZE = 5 * MiB;
/** S3's maximum part size (and CopyObject's maximum object size). */
export const S3_MAX_PART_SIZE = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;

export interface PartCopy {
  /** CopySource: `bucket/key`, encoded. */
  source: string;
  /** `bytes=a-b`, or undefined for the whole object. */
  range?: string;
}

/**
 * Plans one UploadPartCopy per source, splitting a source larger than `splitAbove` into ranges
 * of at least `partSize` (+ slack, so even the remainder stays >= 5 MiB) and at most 5 GiB.
 * Returns undefined when S3 would refuse the upload: a source other than the last below 5 MiB,
 * or more than 10,000 parts. Empty sources contribute nothing and are skipped.
 */
export function planPartCopies(
  sources: { source: string; size: number }[],
  partSize: number,
  splitAbove = S3_MAX_PART_SIZE,
): PartCopy[] | undefined {
  const nonEmpty = sources.filter((s) => s.size > 0);
  if (nonEmpty.length === 0) return undefined;
  const plan: PartCopy[] = [];
  for (const [i, { source, size }] of nonEmpty.entries()) {
    const last = i === nonEmpty.length - 1;
    if (!last && size < S3_MIN_PART_SIZE) return undefined;
    if (size <= splitAbove) {
      plan.push({ source });
      continue;
    }
    const min = Math.min(
      Math.max(partSize, Math.ceil(size / MAX_PARTS)) + MAX_PARTS,
      S3_MAX_PART_SIZE / 2,
    );
    const n = Math.max(1, Math.floor(size / min));
    const chunk = Math.ceil(size / n);
    for (let start = 0; start < size; start += chunk) {
      plan.push({ source, range: `bytes=${start}-${Math.min(start + chunk, size) - 1}` });
    }
  }
  return plan.length <= MAX_PARTS ? plan : undefined;
}

/** CompleteMultipartUpload wants quoted ETags; RGW may return copy ETags unquoted. */
function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/** `Promise.all(items.map(fn))` with at most `limit` in flight; results in order. */
export async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * CreateMultipartUpload, one UploadPartCopy per planned part (`queueSize` at a time), then
 * CompleteMultipartUpload; aborted on any error so nothing partial is ever visible. SDK errors
 * are left for the caller to map.
 */
export async function copyParts(
  client: S3Client,
  Bucket: string,
  Key: string,
  plan: PartCopy[],
  queueSize: number,
): Promise<void> {
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  const UploadId = created.UploadId;
  if (!UploadId) throw new UnavailableError('s3 CreateMultipartUpload returned no UploadId');
  try {
    const etags = await mapLimit(plan, queueSize, async (part, i) => {
      const out = await client.send(
        new UploadPartCopyCommand({
          Bucket,
          Key,
          UploadId,
          PartNumber: i + 1,
          CopySource: part.source,
          CopySourceRange: part.range,
        }),
      );
      return quoteEtag(out.CopyPartResult?.ETag ?? '');
    });
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  } catch (e) {
    await client
      .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }))
      .catch(() => undefined);
    throw e;
  }
}
