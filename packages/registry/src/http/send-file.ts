import type { ServerResponse } from 'node:http';
import type { FileRegion } from '@meridian/storage';

/** Bytes per read and per socket write. */
const CHUNK = 1 * 1024 * 1024;
/** Buffers one response may have in flight (read ahead while the socket drains). */
const PER_RESPONSE = 4;
/** Buffers kept between responses, so a new download does not fault in fresh memory. */
const SPARE_MAX = 16;
const spare: Buffer[] = [];

const take = (): Buffer => spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
const giveBack = (b: Buffer): void => {
  if (spare.length < SPARE_MAX) spare.push(b);
};

/**
 * Writes a file region as the response body (headers already written) through a few reused
 * 1 MiB buffers: a read fills a buffer, the socket write's callback hands it back for the next
 * read. Node's file streams allocate a fresh buffer for every read, and faulting in that new
 * memory costs more CPU than copying the bytes (on this machine a 256 MiB GET went from about
 * 1.5 to 2.4 GB/s, Distribution's speed, which reads into one reused buffer too).
 *
 * Resolves once the last byte is handed to the socket and the response ended; rejects if a read
 * fails or comes up short, or the client goes away. The caller closes the file either way.
 */
export function sendFileRegion(res: ServerResponse, file: FileRegion): Promise<void> {
  return new Promise((resolve, reject) => {
    const free: Buffer[] = [];
    let owned = 0;
    let pos = file.start;
    const end = file.start + file.length;
    let reading = false;
    let inFlight = 0;
    let done = false;

    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      res.off('close', onClose);
      free.forEach(giveBack);
      if (err) reject(err);
      else resolve();
    };
    const onClose = (): void => {
      if (!res.writableEnded) finish(new Error('the client closed the connection'));
    };
    res.on('close', onClose);

    const pump = (): void => {
      if (done || reading) return;
      if (pos >= end) {
        if (inFlight === 0) {
          res.end();
          finish();
        }
        return;
      }
      let buf = free.pop();
      if (!buf) {
        if (owned >= PER_RESPONSE) return; // a write callback calls pump again
        buf = take();
        owned++;
      }
      const chunk = buf;
      const want = Math.min(CHUNK, end - pos);
      reading = true;
      file.read(chunk, want, pos).then(
        (n) => {
          reading = false;
          if (done) return giveBack(chunk);
          if (n !== want) {
            res.destroy();
            return finish(new Error(`file ended ${end - pos - n} bytes early`));
          }
          pos += n;
          inFlight++;
          res.write(n === CHUNK ? chunk : chunk.subarray(0, n), () => {
            inFlight--;
            // Once the write has called back, the socket no longer holds the buffer.
            if (done) giveBack(chunk);
            else {
              free.push(chunk);
              pump();
            }
          });
          pump();
        },
        (err: unknown) => {
          reading = false;
          giveBack(chunk);
          res.destroy();
          finish(err instanceof Error ? err : new Error(String(err)));
        },
      );
    };
    pump();
  });
}
