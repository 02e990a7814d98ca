import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { KdfPool } from './kdf-pool';

/**
 * Password hashing with scrypt (memory-hard). A hash is self-describing —
 * `scrypt$<log2 N>$<r>$<p>$<salt>$<key>` (base64url) — so the cost can be raised later without
 * invalidating stored hashes. Comparison is constant-time.
 */
const DEFAULT_LOG_N = 15;
const R = 8;
const P = 1;
const KEY_LEN = 32;

/**
 * The process's one KDF pool: libuv's thread pool is per process, so its bound is too (see
 * `KdfPool`; `kdfPool.configure` sets it). Every hash and check below goes through it.
 */
export const kdfPool = new KdfPool();

function derive(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return kdfPool.run(
    () =>
      new Promise((resolve, reject) => {
        scrypt(password, salt, KEY_LEN, opts, (err, key) => (err ? reject(err) : resolve(key)));
      }),
  );
}

function scryptOptions(logN: number, r: number, p: number): ScryptOptions {
  return { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r + 16 * 1024 * 1024 };
}

/** Hashes a password (about 50–100 ms of CPU and 32 MiB at the default cost). */
export async function hashPassword(password: string, logN = DEFAULT_LOG_N): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, scryptOptions(logN, R, P));
  return ['scrypt', logN, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/**
 * Whether `password` matches `hash`; false (never a throw) for a malformed hash. Throws
 * `TOOMANYREQUESTS` when the KDF pool's queue is full.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [logN, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![logN, r, p].every((n) => Number.isInteger(n) && n > 0) || logN > 20 || r > 32 || p > 16)
    return false;
  const expected = Buffer.from(parts[5]!, 'base64url');
  const key = await derive(
    password,
    Buffer.from(parts[4]!, 'base64url'),
    scryptOptions(logN, r, p),
  );
  return expected.length === key.length && timingSafeEqual(expected, key);
}

/**
 * A hash no password matches (random salt and key) at the default cost: checking against it costs
 * what a real check costs, without hashing anything to make it.
 */
const DUMMY = ['scrypt', DEFAULT_LOG_N, R, P, randomBytes(16), randomBytes(KEY_LEN)]
  .map((x) => (Buffer.isBuffer(x) ? x.toString('base64url') : String(x)))
  .join('$');

/**
 * Spends the same time as a real check, for an unknown username, so response times do not tell
 * which usernames exist.
 */
export async function verifyDummy(password: string): Promise<false> {
  await verifyPassword(password, DUMMY);
  return false;
}

/** A random password: 32 bytes, base64url (43 characters). */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}

/** A short, non-secret fingerprint of a stored hash (binds refresh tokens to one password). */
export function credentialFingerprint(hash: string): string {
  return createHash('sha256').update(hash).digest('base64url').slice(0, 16);
}
