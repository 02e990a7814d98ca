import type * as IORedis from 'ioredis';

let loaded: typeof IORedis | undefined;

/**
 * ioredis, loaded when the first Redis client is opened: a node with no Redis configured never
 * loads it (issue 18's "small nodes"). Every Meridian package opens its clients through
 * `createRedis`, which calls this; type-only imports of `ioredis` load nothing.
 */
export function ioredis(): typeof IORedis {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('ioredis') as typeof IORedis;
  return loaded;
}
