import type * as S3Module from './s3-store';

export type { S3ChecksumMode, S3StoreOptions, StaleSweep } from './s3-store';

let loaded: typeof S3Module | undefined;

/**
 * The S3 driver's module, loaded on first use: a node on filesystem storage never loads the AWS
 * SDK (about 22 MB of resident memory it would not use).
 */
export function loadS3(): typeof S3Module {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('./s3-store') as typeof S3Module;
  return loaded;
}

/** The S3 driver class (`./s3-store`), loaded when first constructed or inspected. */
export type S3Store = S3Module.S3Store;
export const S3Store: typeof S3Module.S3Store = new Proxy(function S3Store() {}, {
  construct: (_target, args) =>
    new (loadS3().S3Store)(...(args as ConstructorParameters<typeof S3Module.S3Store>)),
  get: (_target, prop) => Reflect.get(loadS3().S3Store, prop) as unknown,
  getPrototypeOf: () => Reflect.getPrototypeOf(loadS3().S3Store),
}) as unknown as typeof S3Module.S3Store;
