/**
 * The V8 settings a Meridian process runs with unless `NODE_OPTIONS` says otherwise (ADR 0028):
 * 2 MB semi-spaces. A node streams blobs through short-lived 64 KiB buffers whose memory is given
 * back only when the young generation is collected; V8's default young generation (16 MB
 * semi-spaces on Node 20, larger on 24) let a 1 GiB push raise resident memory by ~80 MB. The
 * container image sets it (`ENV NODE_OPTIONS`), `meridian dev` passes it to its children, and the
 * benchmarks run Meridian with it. An operator who prefers manifest-GET throughput to memory sets
 * `NODE_OPTIONS=--max-semi-space-size=16`.
 */
export const DEFAULT_NODE_OPTIONS = '--max-semi-space-size=2';

/** `env`'s NODE_OPTIONS if it has one, else the default: what a child Meridian process gets. */
export function nodeOptionsFor(env: NodeJS.ProcessEnv): string {
  return env.NODE_OPTIONS?.trim() ? env.NODE_OPTIONS : DEFAULT_NODE_OPTIONS;
}
