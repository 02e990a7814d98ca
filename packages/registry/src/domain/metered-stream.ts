import type { Hash } from 'node:crypto';
import { Transform, pipeline, type Readable } from 'node:stream';

/** A pass-through that counts bytes and feeds an optional running hash, with no buffering. */
export interface MeteredStream {
  stream: Readable;
  bytes(): number;
}

export function meter(source: Readable, hash?: Hash): MeteredStream {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      hash?.update(chunk);
      cb(null, chunk);
    },
  });
  // pipeline forwards a source error (a client that disconnects) by destroying `t` with it,
  // so whoever consumes `t` sees the failure and discards what it wrote.
  pipeline(source, t, () => {});
  return { stream: t, bytes: () => n };
}
