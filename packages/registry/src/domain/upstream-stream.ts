import { PassThrough, type Readable } from 'node:stream';

export interface UpstreamStreamOptions {
  /** Bytes the source must deliver; ending early is an upstream failure. */
  length: number;
  /** The source delivering no byte for this long, while the reader waits for one, fails it. */
  stallTimeoutMs: number;
  /** Called once if the upstream fails, ends short or stalls (the stream is then destroyed). */
  onFailed?: (err: Error) => void;
}

/**
 * An upstream body passed straight to one reader (a part of a blob a replica does not copy):
 * the source failing, ending short, or sending nothing for `stallTimeoutMs` while the reader
 * waits destroys the stream, so a client's response is aborted (and it retries) instead of
 * hanging. A reader that goes away stops the fetch. Whole blobs go through a `BlobFill`.
 */
export function upstreamStream(source: Readable, opts: UpstreamStreamOptions): Readable {
  const out = new PassThrough();
  let received = 0;
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(
      () => fail(new Error(`upstream sent nothing for ${opts.stallTimeoutMs} ms`)),
      opts.stallTimeoutMs,
    );
  };
  const fail = (err: Error): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    opts.onFailed?.(err);
    out.destroy(err);
    source.destroy();
  };
  out.on('close', () => {
    clearTimeout(timer);
    if (!settled) source.destroy(); // the reader went away: stop fetching
  });
  source.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (out.write(chunk)) arm();
    else {
      // The reader's own pace is not a stall: the clock runs only while the source is read.
      clearTimeout(timer);
      source.pause();
      out.once('drain', () => {
        arm();
        source.resume();
      });
    }
  });
  source.on('end', () => {
    if (received !== opts.length) {
      fail(new Error(`upstream ended after ${received} of ${opts.length} bytes`));
      return;
    }
    settled = true;
    clearTimeout(timer);
    out.end();
  });
  source.on('error', (err) => fail(err));
  arm();
  return out;
}
