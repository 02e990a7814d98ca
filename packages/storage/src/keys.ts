import { InvalidKeyError } from './errors';

/** Longest key (or prefix) accepted, in bytes. */
export const MAX_KEY_BYTES = 1024;

const SEGMENT = /^[A-Za-z0-9._=+-]+$/;
const PARTIAL_SEGMENT = /^[A-Za-z0-9._=+-]*$/;

/**
 * Checks one `/`-separated segment: non-empty, only `[A-Za-z0-9._=+-]`, and neither `.` nor
 * `..`. Returns the reason it is invalid, or undefined.
 */
function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'empty segment';
  if (segment === '.' || segment === '..') return `"${segment}" segment`;
  if (!SEGMENT.test(segment)) return 'segment outside [A-Za-z0-9._=+-]';
  return undefined;
}

function checkLength(value: string): void {
  // Every accepted character is ASCII, so length === bytes once the charset check passed; this
  // early check (UTF-16 units <= bytes) bounds the work done on hostile input.
  if (value.length > MAX_KEY_BYTES) {
    throw new InvalidKeyError(value, `longer than ${MAX_KEY_BYTES} bytes`);
  }
}

/**
 * Validates an object key: `/`-separated segments each matching `[A-Za-z0-9._=+-]+`, no `.`,
 * `..` or empty segment (so no leading, trailing or doubled slash), at most 1024 bytes. Since
 * no segment can climb, a key joined under a root can never leave it.
 * @throws InvalidKeyError
 */
export function validateKey(key: string): string {
  if (typeof key !== 'string') throw new InvalidKeyError(String(key), 'not a string');
  checkLength(key);
  if (key === '') throw new InvalidKeyError(key, 'empty key');
  if (key.startsWith('/')) throw new InvalidKeyError(key, 'leading slash');
  for (const segment of key.split('/')) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw new InvalidKeyError(key, problem);
  }
  return key;
}

/**
 * Validates a listing prefix: empty (everything), or complete key segments followed by `/`
 * and/or a partial last segment (`repositories/lib` matches `repositories/library/...`). The
 * partial segment may use the key charset but may not be `.` or `..`.
 * @throws InvalidKeyError
 */
export function validatePrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new InvalidKeyError(String(prefix), 'not a string');
  checkLength(prefix);
  if (prefix === '') return prefix;
  if (prefix.startsWith('/')) throw new InvalidKeyError(prefix, 'leading slash');
  const segments = prefix.split('/');
  const last = segments.pop() ?? '';
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw new InvalidKeyError(prefix, problem);
  }
  if (last === '.' || last === '..') throw new InvalidKeyError(prefix, `"${last}" segment`);
  if (!PARTIAL_SEGMENT.test(last)) {
    throw new InvalidKeyError(prefix, 'segment outside [A-Za-z0-9._=+-]');
  }
  return prefix;
}

/** Validates a prefix that names a whole "directory": non-empty and ending with `/`. */
export function validateDirPrefix(prefix: string): string {
  validatePrefix(prefix);
  if (!prefix.endsWith('/')) throw new InvalidKeyError(prefix, 'prefix must end with "/"');
  return prefix;
}

/** True when `name` could be one segment of a valid key. */
export function isValidSegment(name: string): boolean {
  return segmentProblem(name) === undefined;
}

/** Compares two keys in byte order (keys are ASCII, so UTF-16 order is byte order). */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
