import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { NotFoundError } from '../errors';
import type { ListOptions, ObjectInfo, ObjectStore } from '../object-store';

/** What every part of the conformance suite shares. */
export interface SuiteContext {
  /** The fixture, once the suite's `beforeAll` has made it. */
  fixture(): ObjectStoreFixture | undefined;
  /** The store under test, once the suite's `beforeAll` has made it. */
  store(): ObjectStore;
  /** A fresh key prefix (no trailing slash) for one test. */
  ns(): string;
}

export interface ObjectStoreFixture {
  /** The store under test, normally a `BaseStore` over the driver. */
  store: ObjectStore;
  cleanup(): Promise<void>;
  /** True when `presignGet` must return a URL that plain `fetch` can download. */
  presign?: boolean;
  /**
   * A second, empty store on the same backend (another directory, another bucket): `copyFrom`
   * it must then be server-side (resolve true).
   */
  other?: ObjectStore;
}

export const MiB = 1024 * 1024;
export const SLOW = 120_000;

export class CheckFailed extends Error {}

/** Buffer equality without jest's element-by-element diff (seconds for 300 KiB). */
export function expectBytes(actual: Buffer, expected: Buffer): void {
  if (actual.equals(expected)) return;
  let at = 0;
  while (at < actual.length && at < expected.length && actual[at] === expected[at]) at++;
  throw new Error(
    `bytes differ: got ${actual.length}, expected ${expected.length}, first difference at offset ${at}`,
  );
}

export async function expectNotFound(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(NotFoundError);
}

export async function listPages(
  store: ObjectStore,
  prefix: string,
  opts: ListOptions,
): Promise<{ objects: ObjectInfo[]; prefixes: string[]; cursor?: string }[]> {
  const pages = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, { ...opts, cursor });
    pages.push(page);
    cursor = page.cursor;
    if (pages.length > 100) throw new Error('listing does not terminate');
  } while (cursor !== undefined);
  return pages;
}

/** A stream delivering `data` in 64 KiB chunks. */
export function chunked(data: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
    })(),
  );
}

/** A stream that delivers `data` and then fails. */
export function failing(data: Buffer): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
      await sleep(10);
      throw new Error('client went away');
    })(),
  );
}

/** `total` random bytes generated on the fly; `digest()` is their sha256 once consumed. */
export function generated(total: number): { stream: Readable; digest(): string } {
  const hash = createHash('sha256');
  let hex: string | undefined;
  const stream = Readable.from(
    (function* () {
      for (let sent = 0; sent < total; sent += MiB) {
        const chunk = randomBytes(Math.min(MiB, total - sent));
        hash.update(chunk);
        yield chunk;
      }
      hex = hash.digest('hex');
    })(),
  );
  return {
    stream,
    digest: () => {
      if (hex === undefined) throw new Error('stream not fully consumed');
      return hex;
    },
  };
}

export async function sha256(body: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function digestOf(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `instanceof Date` fails across realms (jest's sandbox vs node's fs). */
export function isDate(d: unknown): boolean {
  return (
    Object.prototype.toString.call(d) === '[object Date]' && !Number.isNaN((d as Date).getTime())
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
