import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes streamed through the process between two reclaims. */
export const RECLAIM_EVERY = 16 * 1024 * 1024;

type MinorGc = (opts: { type: 'minor' }) => void;

let since = 0;
let gc: MinorGc | null | undefined;

/**
 * Counts bytes a blob stream passed through this process (a socket's chunks written to a file,
 * a part, a spool) and runs a minor garbage collection every `RECLAIM_EVERY` of them (ADR 0028).
 *
 * Each read from a socket arrives in a buffer of its own (64 KiB), whose memory returns only
 * when the collector finds its small JS object dead. A stream allocates little else, so the
 * young generation fills slowly and — between two collections — up to V8's external-memory
 * limit (64 MB) of dead buffers stays resident: that, not the code, was the peak of a 1 GiB
 * push. A minor collection of a young generation of 2 MB costs about 40 µs; one per 16 MiB is
 * well under 1 % of a core at disk speed, and bounds the dead buffers to about 16 MiB.
 */
export function streamed(bytes: number): void {
  since += bytes;
  if (since < RECLAIM_EVERY) return;
  since = 0;
  if (gc === undefined) gc = loadGc();
  gc?.({ type: 'minor' });
}

/**
 * V8's `gc` function without `--expose-gc` on the command line: the flag is set for one new
 * context, whose `gc` is kept, and reset at once (the documented `v8.setFlagsFromString` use).
 * When the process was started with `--expose-gc` that one is used.
 */
function loadGc(): MinorGc | null {
  const exposed = (globalThis as { gc?: MinorGc }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as MinorGc) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
