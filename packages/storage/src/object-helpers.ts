import { randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDigester, type Digest } from '@meridian/oci';
import { isNotFound } from './errors';
import { Layout } from './layout';
import type { ObjectInfo, ObjectStore, PutEntry, PutOptions } from './object-store';
import { isTempName } from './object-store';

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
 * `putChecked` for a store without it: the bytes go to a staging key, which is moved into place
 * when `check` passes. A write that fails, is killed midway or fails the check leaves nothing
 * visible at `key` (a killed write leaves an orphan under `staging/`, never a visible object).
 */
export async function stagedPut(
  store: ObjectStore,
  key: string,
  body: Readable,
  check: () => void,
  opts?: PutOptions,
): Promise<ObjectInfo> {
  // A stable temp name gives a stable staging key: a repeated write replaces what a killed
  // attempt left there (and its driver aborts that attempt's incomplete upload).
  const staging = Layout.staging(isTempName(opts?.tempName) ? opts.tempName : randomUUID());
  try {
    const info = await store.put(staging, body, opts);
    check();
    if (store.move) await store.move(staging, key);
    else {
      await store.copy(staging, key);
      await store.delete(staging);
    }
    return { ...info, key };
  } catch (err) {
    await store.delete(staging).catch(() => {});
    throw err;
  }
}

/** `putInOrder` for a store without it: one `put` (or `putChecked`) after another. */
export async function putEachInOrder(
  store: ObjectStore,
  entries: PutEntry[],
): Promise<ObjectInfo[]> {
  const infos: ObjectInfo[] = [];
  for (const e of entries) {
    const opts = e.size === undefined ? {} : { size: e.size };
    if (e.check) {
      if (Buffer.isBuffer(e.body)) {
        e.check();
        infos.push(await store.put(e.key, e.body, opts));
      } else infos.push(await putChecked(store, e.key, e.body, e.check, opts));
    } else infos.push(await store.put(e.key, e.body, opts));
  }
  return infos;
}

/** `store.putInOrder` where the store has it, else `putEachInOrder`. */
export function putInOrder(store: ObjectStore, entries: PutEntry[]): Promise<ObjectInfo[]> {
  return store.putInOrder ? store.putInOrder(entries) : putEachInOrder(store, entries);
}

/** `store.putChecked` where the store has it, else `stagedPut`. */
export function putChecked(
  store: ObjectStore,
  key: string,
  body: Readable,
  check: () => void,
  opts?: PutOptions,
): Promise<ObjectInfo> {
  return store.putChecked
    ? store.putChecked(key, body, check, opts)
    : stagedPut(store, key, body, check, opts);
}

/**
 * Writes `body` to `key` only if it hashes to `d` (see `putChecked`): a write that fails, is
 * killed midway or carries the wrong bytes leaves nothing visible at `key`.
 */
export async function putVerified(
  store: ObjectStore,
  key: string,
  body: Readable,
  d: Digest,
  size?: number,
  tempName?: string,
): Promise<void> {
  const hash = createDigester(d.algorithm);
  const hasher = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const check = (): void => {
    const actual = `${d.algorithm}:${hash.digest('hex')}`;
    if (actual !== d.value) throw new DigestMismatchError(d.value, actual);
  };
  await Promise.all([
    pipeline(body, hasher),
    putChecked(store, key, hasher, check, { size, tempName }),
  ]);
}
