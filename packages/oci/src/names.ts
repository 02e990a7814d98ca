import { OciError } from './errors';
import { truncate } from './digest';

/** The spec's repository name grammar: path components separated by `/`. */
const NAME_RE =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Longest repository name accepted (Docker Hub and distribution use 255). */
export const MAX_NAME_LENGTH = 255;

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function assertValidName(name: string): void {
  if (!isValidName(name))
    throw new OciError('NAME_INVALID', `invalid repository name: ${truncate(name)}`);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}
