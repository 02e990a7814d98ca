import { randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDigester, type Digest } from '@meridian/oci';
import { isNotFound } from './errors';
import { Layout } from './layout';
import type { ObjectStore } from './object-store';

/** Whether `key` exists (other errors propagate). */
export async function exists(store: ObjectStore, key: string): Promise<boolean> {
  try {
    await store.head(key);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** A small JSON object, or undefined when it does not exist. */
export async function readJson<T>(store: ObjectStore, key: string): Promise<T | undefined> {
  try {
    return JSON.parse((await store.getBytes(key)).toString('utf8')) as T;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The bytes written did not hash to the expected digest; nothing was made visible. */
export class DigestMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

/**
 * Writes `body` to `key` only if it hashes to `d`: the bytes stream through the digest into a
 * staging key, which is moved into place when the digest matches. A write that fails, is
 * killed midway or carries the wrong bytes leaves nothing visible at `key`.
 */
export async function putVerified(
  store: ObjectStore,
  key: string,
  body: Readable,
  d: Digest,
  size?: number,
): Promise<void> {
  const staging = Layout.staging(randomUUID());
  const hash = createDigester(d.algorithm);
  const hasher = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await Promise.all([pipeline(body, hasher), store.put(staging, hasher, { size })]);
    const actual = `${d.algorithm}:${hash.digest('hex')}`;
    if (actual !== d.value) throw new DigestMismatchError(d.value, actual);
    if (store.move) await store.move(staging, key);
    else {
      await store.copy(staging, key);
      await store.delete(staging);
    }
  } catch (err) {
    await store.delete(staging).catch(() => {});
    throw err;
  }
}
