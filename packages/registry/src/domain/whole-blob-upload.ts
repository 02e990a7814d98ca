import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createDigester, OciError, type Digest } from '@meridian/oci';
import {
  Layout,
  isNotFound,
  layerLinkEntry,
  putChecked,
  putInOrder,
  storageCorruptBlobsReplaced,
  type ObjectStore,
} from '@meridian/storage';
import type { BlobInfo, BlobStore } from './blob-store';
import type { RegistryEvents } from './events';
import { clientBodyError, meter } from './metered-stream';

/**
 * The commit of a blob into a repository: the whole-blob upload path (a monolithic `POST`, or a
 * session's single `PUT` with the body), and the link-and-announce step every upload ends with.
 */
export class WholeBlobUpload {
  constructor(
    private readonly store: ObjectStore,
    private readonly blobs: BlobStore,
    private readonly events: RegistryEvents,
  ) {}

  /**
   * A blob that arrives whole in one request: its bytes stream through the digest straight to the
   * blob's key and become visible only when digest and length match (no session, no chunk). A
   * stored copy of the declared size is kept (the bytes sent are verified, then dropped); one of
   * any other size is corrupt, and the verified bytes replace it.
   *
   * `verified` is for a body this process has already hashed to `d` — a `BlobFill`'s reader,
   * which ends only after its bytes matched the digest: its bytes are not hashed a second time
   * (the length is still checked). Never set for bytes a client sends.
   */
  async write(
    repository: string,
    d: Digest,
    body: Readable,
    contentLength?: number,
    opts: { stored?: Promise<number | undefined>; verified?: boolean } = {},
  ): Promise<BlobInfo> {
    const { stored, verified = false } = opts;
    const key = Layout.blobData(d);
    const hash = verified ? undefined : createDigester(d.algorithm);
    let data: Buffer | Readable;
    let received: () => number;
    if (contentLength !== undefined && contentLength <= SMALL_BLOB) {
      // A config or a tiny layer is already in memory, read off the socket in one or two chunks:
      // it is checked and written as a Buffer, with no stream machinery in between.
      const bytes = await readExactly(body, contentLength);
      hash?.update(bytes);
      data = bytes;
      received = () => bytes.length;
    } else {
      const metered = meter(body, hash);
      data = metered.stream;
      received = () => metered.bytes();
    }
    const check = (): void => {
      const n = received();
      if (contentLength !== undefined && n !== contentLength) throw sizeInvalid(n, contentLength);
      if (hash && hash.digest('hex') !== d.hex) throw digestMismatch(d);
    };
    const existing = await (stored ?? this.storedSize(key));
    if (existing !== undefined && existing === contentLength) {
      // Already stored (another repository has it): verify what was sent, keep what is there.
      if (!Buffer.isBuffer(data)) await drain(data);
      check();
      const bytes = data;
      await this.blobs.guard.shared(this.blobs.locks(repository, d), async () => {
        // Re-checked under the blob's lock: garbage collection may have freed that copy.
        if ((await this.storedSize(key)) === undefined) {
          if (!Buffer.isBuffer(bytes))
            throw new OciError(
              'BLOB_UPLOAD_INVALID',
              'the stored copy of this blob was garbage-collected during the upload; upload it again',
            );
          await this.store.put(key, bytes);
        }
        await this.blobs.linkLocked(repository, d, received());
      });
      return this.announce(repository, d, received());
    }
    const replaced = (): void => {
      if (existing !== undefined && existing !== received()) this.countCorrupt();
    };
    if (!Buffer.isBuffer(data) && contentLength === undefined) {
      // Unknown length: the link, which records the size, follows once the blob is in place.
      await putChecked(this.store, key, data, check);
      replaced();
      return this.linkCommitted(repository, d, received());
    }
    // The blob, then its link (its size is the declared length, which the check holds the body
    // to), visible in that order; their writes and fsyncs overlap.
    const size = Buffer.isBuffer(data) ? data.length : contentLength!;
    const write = async (): Promise<void> => {
      await putInOrder(this.store, [
        { key, body: data, check, size },
        layerLinkEntry(repository, d, size),
      ]);
    };
    // Replacing a stored copy: under the blob's lock, so GC cannot be deleting that copy as the
    // link lands (ADR 0012). A new blob needs none: it is younger than any grace period.
    if (existing === undefined) await write();
    else await this.blobs.guard.shared(this.blobs.locks(repository, d), write);
    this.blobs.guard.referenced(d.value);
    replaced();
    return this.announce(repository, d, size);
  }

  /** The size of a stored object, or undefined when there is none. */
  async storedSize(key: string): Promise<number | undefined> {
    try {
      return (await this.store.head(key)).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  countCorrupt(): void {
    storageCorruptBlobsReplaced.inc({ driver: this.store.name });
  }

  /** Links a stored blob into the repository and announces the commit. */
  async linkCommitted(repository: string, d: Digest, size: number): Promise<BlobInfo> {
    await this.blobs.link(repository, d, size);
    return this.announce(repository, d, size);
  }

  async announce(repository: string, d: Digest, size: number): Promise<BlobInfo> {
    await this.events.emit({
      type: 'blobCommitted',
      repository,
      digest: d.value,
      size,
      at: Date.now(),
    });
    return { digest: d.value, size };
  }
}

export function sizeInvalid(received: number, declared: number): OciError {
  return new OciError(
    'SIZE_INVALID',
    `received ${received} bytes but Content-Length was ${declared}`,
  );
}

export function digestMismatch(d: Digest): OciError {
  return new OciError('DIGEST_INVALID', 'provided digest did not match uploaded content', {
    digest: d.value,
  });
}

/** Blobs up to this size that arrive whole in one request are handled as a Buffer. */
const SMALL_BLOB = 64 * 1024;

/** The whole body, which must be exactly `length` bytes (else `SIZE_INVALID`). */
async function readExactly(body: Readable, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of body) {
      n += (chunk as Buffer).length;
      if (n <= length) chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw clientBodyError(err);
  }
  if (n !== length) throw sizeInvalid(n, length);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, n);
}

/** Reads a stream to its end, discarding the bytes. */
async function drain(stream: Readable): Promise<void> {
  stream.resume();
  await finished(stream);
}
