import { createHash, type Hash } from 'node:crypto';
import { OciError } from './errors';

/** Digest algorithms the registry accepts, with the length of their hex encoding. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  /** `algorithm:hex` */
  readonly value: string;
}

const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/** Parses `sha256:<64 hex>` / `sha512:<128 hex>`; returns undefined on anything else. */
export function tryParseDigest(s: string): Digest | undefined {
  const m = DIGEST_RE.exec(s);
  if (!m) return undefined;
  const algorithm = m[1] as DigestAlgorithm;
  const hex = m[2]!;
  const len = DIGEST_ALGORITHMS[algorithm] as number | undefined;
  if (len === undefined || hex.length !== len || !/^[a-f0-9]+$/.test(hex)) return undefined;
  return { algorithm, hex, value: s };
}

/** Parses a digest or throws the spec's `DIGEST_INVALID`. */
export function parseDigest(s: string): Digest {
  const d = tryParseDigest(s);
  if (!d) throw new OciError('DIGEST_INVALID', `invalid digest: ${truncate(s)}`);
  return d;
}

export function isDigestLike(s: string): boolean {
  return s.includes(':');
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

export function createDigester(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function truncate(s: string, n = 80): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
