import type { Readable, Writable } from 'node:stream';

/**
 * Watches a piped stream for stalls: `onStall` runs when `src` delivers no byte for `ms` while
 * `dst` is ready for more (time `dst` spends applying backpressure does not count). Register it
 * after `src.pipe(dst)`. Returns a function that stops watching; it stops by itself when `src`
 * ends or closes.
 */
export function watchStall(
  src: Readable,
  dst: Writable,
  ms: number,
  onStall: () => void,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const arm = (): void => {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(onStall, ms);
  };
  const onData = (): void => {
    // Runs after pipe's own handler, which wrote the chunk and paused `src` if `dst` is full.
    if (dst.writableNeedDrain) {
      clearTimeout(timer);
      dst.once('drain', arm);
    } else arm();
  };
  const stop = (): void => {
    stopped = true;
    clearTimeout(timer);
    src.off('data', onData);
    dst.off('drain', arm);
  };
  src.on('data', onData);
  src.once('end', stop);
  src.once('close', stop);
  arm();
  return stop;
}
