import { S3Client } from '@aws-sdk/client-s3';

export type S3ChecksumMode = 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';

export interface S3StoreOptions {
  /** Bucket holding the objects. */
  bucket: string;
  /** Key prefix inside the bucket (`eastus` → keys under `eastus/`). Default: none. */
  prefix?: string;
  /** S3-compatible endpoint (`http://127.0.0.1:7480`). Default: AWS for `region`. */
  endpoint?: string;
  /** Default: `AWS_REGION`, else `us-east-1`. */
  region?: string;
  /** Path-style addressing. Default: true when `endpoint` is set, false otherwise. */
  forcePathStyle?: boolean;
  /** Default: the standard AWS chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Default: `WHEN_REQUIRED` with a custom endpoint (RGW answers 411 to aws-chunked bodies), else `WHEN_SUPPORTED`. */
  requestChecksumCalculation?: S3ChecksumMode;
  /** Default: as `requestChecksumCalculation`. */
  responseChecksumValidation?: S3ChecksumMode;
  /** Multipart part size in bytes. Default 16 MiB; at least 5 MiB. */
  partSize?: number;
  /** Parts uploaded (or copied) in parallel per operation. Default 2. */
  queueSize?: number;
  /** Larger objects are copied with UploadPartCopy instead of CopyObject. Default 5 GiB (the S3 limit). */
  maxCopyObjectSize?: number;
  /** Keys listed and deleted per `DeleteObjects` call by `deletePrefix`. Default 1000 (the S3 maximum). */
  deleteBatchSize?: number;
  /** TCP connect timeout in ms. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * Crash leftovers under the prefix older than this (incomplete multipart uploads, objects
   * under `_replication/staging/`) are removed in the background on first use. Default 24 h.
   */
  staleTempMs?: number;
}

/** An S3Client configured from the options (path style and checksum defaults for custom endpoints). */
export function createClient(opts: S3StoreOptions): S3Client {
  const custom = opts.endpoint !== undefined;
  const checksum = opts.requestChecksumCalculation ?? (custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED');
  return new S3Client({
    region: opts.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(custom ? { endpoint: opts.endpoint } : {}),
    forcePathStyle: opts.forcePathStyle ?? custom,
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    requestChecksumCalculation: checksum,
    responseChecksumValidation: opts.responseChecksumValidation ?? checksum,
    requestHandler: { connectionTimeout: opts.connectTimeoutMs ?? 5000 },
  });
}
