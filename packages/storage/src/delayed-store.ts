import type { ObjectStore } from './object-store';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Adds a fixed delay before every call to another store: a simulated inter-region link for
 * `meridian dev`, so replication lag on one machine looks like lag across continents.
 */
export function withLatency(store: ObjectStore, ms: number): ObjectStore {
  if (ms <= 0) return store;
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'close') return v;
      return async (...args: unknown[]) => {
        await sleep(ms);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
