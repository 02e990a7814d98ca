import type { Mutex } from './region-sync';

/**
 * A mutex by name within one process (the worker's is a Redis lock shared by every worker):
 * callers of one name run one after another, in the order they asked.
 */
export function localMutex(): Mutex {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(name: string, fn: () => Promise<T>) => {
    const prev = tails.get(name) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    tails.set(
      name,
      run.catch(() => undefined),
    );
    return run;
  };
}
