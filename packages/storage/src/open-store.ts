import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BaseStore } from './base-store';
import { FsStore, type FsStoreOptions } from './fs-store';
import { loadS3, type S3StoreOptions } from './s3-lazy';
import { parseS3Url } from './s3-url';

/** Driver settings for `openStore`; parameters in an `s3://` URL take precedence. */
export type OpenStoreOptions = Partial<Omit<S3StoreOptions, 'bucket'>> &
  Partial<Omit<FsStoreOptions, 'root'>>;

/**
 * Opens the store named by `location`: a directory path or `file://` URL (fs driver), or
 * `s3://BUCKET[/PREFIX]?endpoint=...&region=...` (S3 driver). Always wrapped in `BaseStore`.
 */
export async function openStore(location: string, opts: OpenStoreOptions = {}): Promise<BaseStore> {
  const defined = Object.fromEntries(
    Object.entries(opts).filter(([, v]) => v !== undefined),
  ) as OpenStoreOptions;
  if (location.startsWith('s3://')) {
    return new BaseStore(new (loadS3().S3Store)({ ...defined, ...parseS3Url(location) }));
  }
  let root: string;
  if (location.startsWith('file://')) root = fileURLToPath(location);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new Error(
      `unsupported storage location scheme: ${location.split(':')[0]}: (use a path, file:// or s3://)`,
    );
  } else root = location;
  if (root === '') throw new Error('storage location is empty');
  return new BaseStore(
    new FsStore({
      root: path.resolve(root),
      ...(defined.staleTempMs ? { staleTempMs: defined.staleTempMs } : {}),
    }),
  );
}
