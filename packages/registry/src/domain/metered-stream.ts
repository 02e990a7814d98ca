import type { Hash } from 'node:crypto';
import { Transform, finished, type Readable } from 'node:stream';
import { BodyError } from '@meridian/storage';

/** A pass-through that counts bytes and feeds an optional running hash, with no buffering. */
export interface MeteredStream {
  stream: Readable;
  bytes(): number;
}

/**
 * Meters a client's request body. Its failures (a client that disconnects, a body cut short) are
 * the client's doing and come out of the returned stream as a `BodyError`, which storage passes on
 * as it is: the caller answers a client error and logs no storage failure.
 */
export function meter(source: Readable, hash?: Hash): MeteredStream {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      hash?.update(chunk);
      cb(null, chunk);
    },
  });
  finished(source, (err) => {
    if (err) t.destroy(clientBodyError(err));
  });
  // A consumer that stops early (storage failed, a size check refused the bytes) leaves the rest
  // of the body unread: it is drained, not destroyed, so the answer still reaches the client.
  t.once('close', () => {
    if (source.readableEnded || source.destroyed) return;
    source.unpipe(t);
    source.resume();
  });
  source.pipe(t);
  return { stream: t, bytes: () => n };
}

/** An error of a client's request body, as a `BodyError` (see `meter`). */
export function clientBodyError(err: unknown): BodyError {
  if (err instanceof BodyError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new BodyError('source', `the client's request body failed: ${why}`, { cause: err });
}
