import type * as Undici from 'undici';

let loaded: typeof Undici | undefined;

/**
 * undici, loaded on the first upstream request: a node no import or cache rule has used yet never
 * loads it (about 20 MB of resident memory, issue 18's "small nodes").
 */
export function undici(): typeof Undici {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('undici') as typeof Undici;
  return loaded;
}
