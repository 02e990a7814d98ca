import type { Digest } from '@meridian/oci';
import { unrecoverable } from '@meridian/redis';
import {
  DigestMismatchError,
  Layout,
  isNotFound,
  putVerified,
  type ObjectStore,
} from '@meridian/storage';
import { bytesCopied, copyDuration } from './metrics';

export type CopyMode = 'server-side' | 'streamed' | 'skipped';

/** Told of each blob actually copied (not of skipped ones): its size and how long it took. */
export type CopyListener = (bytes: number, seconds: number) => void;

/**
 * Makes blob `d` present in `dst`, copying from `src`. A blob already there is skipped (so a
 * shared base crosses to each region once). Same S3 endpoint → server-side copy; otherwise the
 * bytes stream through a digest check into a staging key and are moved into place only when
 * the digest matches — a copy killed midway leaves nothing visible.
 */
export async function copyBlob(
  src: ObjectStore,
  dst: ObjectStore,
  d: Digest,
  region: string,
  onCopied?: CopyListener,
): Promise<CopyMode> {
  const key = Layout.blobData(d);
  // The region first: it is local, and a blob there is complete (objects appear atomically, and
  // the key is the content's digest), so a copy that lost the race costs no round trip.
  try {
    await dst.head(key);
    return 'skipped';
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const srcInfo = await src.head(key).catch((err: unknown) => {
    if (isNotFound(err)) throw unrecoverable(`source blob ${d.value} is gone from the primary`);
    throw err;
  });
  const started = process.hrtime.bigint();
  let mode: CopyMode = 'streamed';
  // One stable temp name per blob: a copy that a killed worker left half-written is removed
  // when the job runs again (the per-digest lock keeps two copies of one blob apart).
  const tempName = `replication-${d.algorithm}-${d.hex}`;
  if (dst.copyFrom && (await dst.copyFrom(src, key, key, { tempName }))) {
    mode = 'server-side';
  } else {
    const { body } = await src.get(key);
    try {
      await putVerified(dst, key, body, d, srcInfo.size, tempName);
    } catch (err) {
      if (err instanceof DigestMismatchError)
        throw unrecoverable(`copying ${d.value} from the primary: ${err.message}`);
      throw err;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  bytesCopied.inc({ region, mode }, srcInfo.size);
  copyDuration.observe({ region, mode }, seconds);
  onCopied?.(srcInfo.size, seconds);
  return mode;
}

/** Copies a small metadata object (link, tag record, manifest) verbatim. */
export async function copySmall(src: ObjectStore, dst: ObjectStore, key: string): Promise<boolean> {
  let bytes: Buffer;
  try {
    bytes = await src.getBytes(key);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  await dst.put(key, bytes, { size: bytes.length });
  return true;
}
