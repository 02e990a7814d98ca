import { OciError } from '@meridian/oci';
import { RE2 } from 're2-wasm';

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
  let re: RE2;
  try {
    re = new RE2(`^(?:${source})$`, 'u');
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
