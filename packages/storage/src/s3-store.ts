import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { InvalidRangeError, UnavailableError } from './errors';
import type {
  ByteRange,
  GetResult,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from './object-store';
import { isTempName } from './object-store';
import { createClient, type S3StoreOptions } from './s3-client';
import { mapS3Error, s3ErrorName, s3Status } from './s3-errors';
import {
  S3_MAX_PART_SIZE,
  S3_MIN_PART_SIZE,
  copyParts,
  mapLimit,
  planPartCopies,
  type PartCopy,
} from './s3-parts';
import { staleTempsRemoved } from './metrics';
import { abortUploadsOf, sweepStaleS3, type StaleSweep } from './s3-sweep';
import { deleteAllUnder, putMultipart, putOnce } from './s3-write';

export type { S3ChecksumMode, S3StoreOptions } from './s3-client';
export { S3_MIN_PART_SIZE } from './s3-parts';
export type { StaleSweep } from './s3-sweep';

const MiB = 1024 * 1024;

/**
 * S3 driver on `@aws-sdk/client-s3`, tested against Ceph RGW. Every write is atomic by S3
 * semantics: a single PutObject, or a multipart upload that is aborted if the body fails.
 * ETags are never used as digests (RGW may return an empty one for multipart uploads). What a
 * killed process leaves (an incomplete multipart upload, a staging object never moved into
 * place) is swept in the background on first use once older than `staleTempMs`.
 */
export class S3Store implements ObjectStore {
  readonly name = 's3';
  readonly client: S3Client;
  readonly bucket: string;
  /** The custom endpoint, if any (stores on one endpoint can copy between them server-side). */
  readonly endpoint: string | undefined;
  readonly region: string;
  /** Key prefix inside the bucket, `''` or ending with `/`. */
  readonly prefix: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly maxCopyObjectSize: number;
  private readonly deleteBatchSize: number;
  private readonly staleTempMs: number;
  private sweep: Promise<StaleSweep | undefined> | undefined;

  constructor(opts: S3StoreOptions) {
    this.client = createClient(opts);
    this.bucket = opts.bucket;
    this.endpoint = opts.endpoint;
    this.region = opts.region ?? process.env.AWS_REGION ?? 'us-east-1';
    this.prefix = normalisePrefix(opts.prefix);
    this.partSize = opts.partSize ?? 16 * MiB;
    if (!(Number.isSafeInteger(this.partSize) && this.partSize >= S3_MIN_PART_SIZE)) {
      throw new Error(`s3 partSize must be an integer >= ${S3_MIN_PART_SIZE} (5 MiB)`);
    }
    this.queueSize = Math.max(1, opts.queueSize ?? 2);
    this.maxCopyObjectSize = Math.min(opts.maxCopyObjectSize ?? S3_MAX_PART_SIZE, S3_MAX_PART_SIZE);
    this.deleteBatchSize = Math.min(Math.max(1, opts.deleteBatchSize ?? 1000), 1000);
    this.staleTempMs = opts.staleTempMs ?? 24 * 3600 * 1000;
    if (!(this.staleTempMs > 0)) throw new Error('s3 staleTempMs must be a positive number of ms');
  }

  /**
   * The background sweep (`sweepStale`) that the first write or ping started, undefined before;
   * it resolves to undefined if the sweep failed (a sweep never fails a request).
   */
  get sweeping(): Promise<StaleSweep | undefined> | undefined {
    return this.sweep;
  }

  /** Aborts this prefix's stale multipart uploads and deletes its stale staging objects. */
  async sweepStale(): Promise<StaleSweep> {
    try {
      return await sweepStaleS3(this.client, this.bucket, this.prefix, this.staleTempMs);
    } catch (e) {
      throw mapS3Error(e, 'sweepStale');
    }
  }

  /** Creates the bucket; one that already exists and is ours counts as success. */
  static async ensureBucket(opts: S3StoreOptions): Promise<void> {
    const client = createClient(opts);
    try {
      await client.send(new CreateBucketCommand({ Bucket: opts.bucket }));
    } catch (e) {
      const name = s3ErrorName(e);
      if (name === 'BucketAlreadyOwnedByYou') return;
      if (name === 'BucketAlreadyExists') {
        // Owned by us if we can reach it (RGW/AWS us-east-1 answer 200 anyway).
        await client.send(new HeadBucketCommand({ Bucket: opts.bucket })).catch((err: unknown) => {
          throw mapS3Error(err, `ensureBucket ${opts.bucket}`);
        });
        return;
      }
      throw mapS3Error(e, `ensureBucket ${opts.bucket}`);
    } finally {
      client.destroy();
    }
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    if (range?.end !== undefined && range.end < range.start) {
      throw new InvalidRangeError((await this.head(key)).size);
    }
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
        }),
      );
      const body = out.Body;
      if (!(body instanceof Readable)) throw new UnavailableError('s3 get: no body stream');
      const length = out.ContentLength ?? 0;
      const total = /\/(\d+)$/.exec(out.ContentRange ?? '')?.[1];
      return { body, size: total !== undefined ? Number(total) : length, length };
    } catch (e) {
      if (range && (s3Status(e) === 416 || s3ErrorName(e) === 'InvalidRange')) {
        const { size } = await this.head(key);
        // An empty object has no satisfiable range; like fs, it reads as empty.
        if (size === 0)
          return { body: Readable.from([], { objectMode: false }), size: 0, length: 0 };
        throw new InvalidRangeError(size);
      }
      throw mapS3Error(e, 'get', key);
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
      );
      if (!out.Body) return Buffer.alloc(0);
      const bytes = await out.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (e) {
      throw mapS3Error(e, 'getBytes', key);
    }
  }

  async head(key: string): Promise<ObjectInfo> {
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
      );
      return { key, size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0) };
    } catch (e) {
      throw mapS3Error(e, 'head', key);
    }
  }

  async put(key: string, body: Readable | Buffer, opts: PutOptions = {}): Promise<ObjectInfo> {
    this.sweepOnce();
    try {
      // A repeated write (a stable temp name): what a killed earlier attempt left of this key
      // as an incomplete multipart upload goes first, instead of waiting for the stale sweep.
      if (isTempName(opts.tempName)) {
        const aborted = await abortUploadsOf(this.client, this.bucket, this.full(key));
        if (aborted > 0) staleTempsRemoved.inc({ driver: 's3' }, aborted);
      }
      const Key = this.full(key);
      let size = Buffer.isBuffer(body) ? body.length : opts.size;
      if (size !== undefined && (Buffer.isBuffer(body) || size <= this.partSize)) {
        await putOnce(this.client, this.bucket, Key, body, size, opts.contentType);
      } else {
        size = await putMultipart(this.client, this.bucket, Key, body as Readable, {
          partSize: this.partSize,
          queueSize: this.queueSize,
          contentType: opts.contentType,
        });
      }
      return { key, size, modified: new Date() };
    } catch (e) {
      if (!Buffer.isBuffer(body)) body.destroy(); // release the caller's source
      throw mapS3Error(e, `put ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
    } catch (e) {
      if (s3Status(e) === 404) return;
      throw mapS3Error(e, 'delete', key);
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    try {
      await deleteAllUnder(
        this.client,
        this.bucket,
        this.full(prefix),
        this.deleteBatchSize,
        prefix,
      );
    } catch (e) {
      throw mapS3Error(e, `deletePrefix ${prefix}`);
    }
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListPage> {
    try {
      const out = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          Delimiter: opts.delimiter,
          ContinuationToken: opts.cursor,
          MaxKeys: opts.limit ?? 1000,
        }),
      );
      const strip = this.prefix.length;
      return {
        objects: (out.Contents ?? []).flatMap((o) =>
          o.Key
            ? [
                {
                  key: o.Key.slice(strip),
                  size: o.Size ?? 0,
                  modified: o.LastModified ?? new Date(0),
                },
              ]
            : [],
        ),
        prefixes: (out.CommonPrefixes ?? []).flatMap((p) =>
          p.Prefix ? [p.Prefix.slice(strip)] : [],
        ),
        ...(out.IsTruncated && out.NextContinuationToken
          ? { cursor: out.NextContinuationToken }
          : {}),
      };
    } catch (e) {
      throw mapS3Error(e, `list ${prefix}`);
    }
  }

  async copy(src: string, dst: string): Promise<void> {
    await this.copyObject(src, dst);
  }

  /** Copy then delete: atomic at `dst`; `src` goes afterwards. */
  async move(src: string, dst: string): Promise<void> {
    await this.copyObject(src, dst);
    await this.delete(src);
  }

  /**
   * Server-side copy from another S3 store on the same endpoint (another bucket or prefix).
   * False for other drivers or endpoints, or when these credentials may not read the source.
   */
  async copyFrom(
    source: ObjectStore,
    srcKey: string,
    dstKey: string,
    opts?: Pick<PutOptions, 'tempName'>,
  ): Promise<boolean> {
    if (!(source instanceof S3Store)) return false;
    if (source.endpoint !== this.endpoint || source.region !== this.region) return false;
    const { size } = await source.head(srcKey);
    try {
      // A killed multipart copy of a repeated copy left its parts under dstKey: abort them.
      if (isTempName(opts?.tempName)) {
        const aborted = await abortUploadsOf(this.client, this.bucket, this.full(dstKey));
        if (aborted > 0) staleTempsRemoved.inc({ driver: 's3' }, aborted);
      }
      await this.copyRaw(source, srcKey, size, dstKey);
    } catch (e) {
      if (s3Status(e) === 403) return false;
      throw mapS3Error(e, 'copyFrom', srcKey);
    }
    return true;
  }

  async concat(srcs: string[], dst: string): Promise<ObjectInfo> {
    const [first] = srcs;
    if (first === undefined) return this.put(dst, Buffer.alloc(0));
    if (srcs.length === 1) {
      const size = await this.copyObject(first, dst);
      return { key: dst, size, modified: new Date() };
    }
    const sources = await mapLimit(srcs, 4, async (key) => ({
      key,
      size: (await this.head(key)).size,
    }));
    const size = sources.reduce((n, s) => n + s.size, 0);
    const plan = planPartCopies(
      sources.map((s) => ({ source: this.copySource(s.key), size: s.size })),
      this.partSize,
    );
    try {
      if (plan) await this.multipartCopy(plan, dst);
      else
        return await this.put(
          dst,
          Readable.from(this.concatenated(sources), { objectMode: false }),
          { size },
        );
    } catch (e) {
      throw mapS3Error(e, `concat ${dst}`);
    }
    return { key: dst, size, modified: new Date() };
  }

  async presignGet(key: string, expiresSeconds: number): Promise<string> {
    try {
      return await getSignedUrl(
        this.client,
        new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
        { expiresIn: expiresSeconds },
      );
    } catch (e) {
      throw mapS3Error(e, 'presignGet', key);
    }
  }

  async ping(): Promise<void> {
    this.sweepOnce();
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      const status = s3Status(e);
      throw new UnavailableError(
        `s3 bucket ${this.bucket} unreachable: ${s3ErrorName(e)}${status ? ` (HTTP ${status})` : ''}`,
      );
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** Starts the crash-leftover sweep once, in the background, like fs's temp sweep. */
  private sweepOnce(): void {
    this.sweep ??= this.sweepStale().catch(() => undefined);
  }

  private full(key: string): string {
    return this.prefix + key;
  }

  /** `bucket/key`, URL-encoded per segment, for CopySource. */
  private copySource(key: string): string {
    const path = this.full(key).split('/').map(encodeURIComponent).join('/');
    return `${encodeURIComponent(this.bucket)}/${path}`;
  }

  /** Copies one object server-side; returns its size. */
  private async copyObject(src: string, dst: string): Promise<number> {
    const { size } = await this.head(src);
    try {
      await this.copyRaw(this, src, size, dst);
    } catch (e) {
      throw mapS3Error(e, 'copy', src);
    }
    return size;
  }

  /** CopyObject, or UploadPartCopy parts above `maxCopyObjectSize`; SDK errors unmapped. */
  private async copyRaw(from: S3Store, src: string, size: number, dst: string): Promise<void> {
    this.sweepOnce();
    const source = from.copySource(src);
    if (size <= this.maxCopyObjectSize) {
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: this.full(dst), CopySource: source }),
      );
      return;
    }
    const plan = planPartCopies([{ source, size }], this.partSize, this.maxCopyObjectSize);
    if (!plan) throw new UnavailableError(`s3 copy ${src}: too large to copy in parts`);
    await this.multipartCopy(plan, dst);
  }

  private async multipartCopy(plan: PartCopy[], dst: string): Promise<void> {
    this.sweepOnce();
    await copyParts(this.client, this.bucket, this.full(dst), plan, this.queueSize);
  }

  /** The sources' bytes in order, each checked against its expected size. */
  private async *concatenated(sources: { key: string; size: number }[]): AsyncGenerator<Buffer> {
    for (const { key, size } of sources) {
      if (size === 0) continue;
      const { body } = await this.get(key);
      let seen = 0;
      for await (const chunk of body) {
        seen += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      if (seen !== size) throw new UnavailableError(`s3 concat: ${key} changed while being read`);
    }
  }
}

function normalisePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  return p === '' ? '' : `${p}/`;
}
