import { OciError } from '@meridian/oci';
import type * as Re2Wasm from 're2-wasm';

let re2: typeof Re2Wasm | undefined;

/**
 * re2-wasm, loaded by the first pattern compiled: its WebAssembly memory is 16 MB resident from
 * the moment it loads, which a node that never filters by a pattern does not pay (issue 18).
 */
function loadRe2(): typeof Re2Wasm {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  re2 ??= require('re2-wasm') as typeof Re2Wasm;
  return re2;
}

/** A compiled name pattern: `test` matches the whole name. */
export interface NamePattern {
  readonly source: string;
  test(name: string): boolean;
}

/** The longest pattern an Owner may supply. */
export const MAX_PATTERN_LENGTH = 512;

/**
 * Compiles an Owner-supplied regex for purge filters and retention rules with RE2 (linear time:
 * no backtracking, so no pattern can stall the primary's event loop — ReDoS), anchored to the
 * whole name. RE2 has no back-references or look-around; such a pattern is refused (400).
 */
export function compilePattern(source: string, what: string): NamePattern {
  if (source.length > MAX_PATTERN_LENGTH)
    throw new OciError(
      'UNSUPPORTED',
      `${what}: longer than ${MAX_PATTERN_LENGTH} characters`,
      undefined,
      400,
    );
  let re: Re2Wasm.RE2;
  try {
    re = new (loadRe2().RE2)(`^(?:${source})$`, 'u');
  } catch (err) {
    throw new OciError(
      'UNSUPPORTED',
      `${what}: ${(err as Error).message.slice(0, 200)}`,
      undefined,
      400,
    );
  }
  return { source, test: (name) => re.test(name) };
}
