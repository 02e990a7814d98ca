import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { OciError } from '@meridian/oci';
import { listAllKeys, readJson, type ObjectStore } from '@meridian/storage';
import type { UpstreamCredentials } from './remote-registry';

/** Where credential sets live in the primary region's object store (never replicated). */
export const CREDENTIAL_SETS_ROOT = '_cache/credential-sets/';

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,49}$/;

/** A credential set as stored: the username and password only as AES-256-GCM ciphertext. */
interface StoredCredentialSet {
  name: string;
  /** The registry the credentials are for (`docker.io`), informational. */
  loginServer?: string;
  /** base64 of iv (12 bytes) ‖ tag (16 bytes) ‖ ciphertext of `{"username","password"}`. */
  sealed: string;
  createdAt: string;
  updatedAt: string;
}

/** What the admin API shows: never the username or the password. */
export interface CredentialSetView {
  name: string;
  loginServer?: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * Reads the operator's key: 32 bytes, base64 (`openssl rand -base64 32`). Throws with a message
 * that says what is wrong, never the key.
 */
export function parseCredentialKey(base64: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32 || key.toString('base64') !== base64.replace(/\s+/g, ''))
    throw new Error('must be 32 bytes, base64 (e.g. openssl rand -base64 32)');
  return key;
}

/**
 * Credential sets (ADR 0019): a name for a username and password an import or a cache rule
 * logs in to an upstream with. Kept in the primary's store, encrypted with the operator's key
 * (AES-256-GCM, a fresh IV per write, the set's name as additional data so a sealed value
 * cannot be moved to another name). Never returned by the API and never logged; a wrong key
 * reads as an error naming the set, not as garbage.
 */
export class CredentialSets {
  constructor(
    private readonly store: ObjectStore,
    private readonly key: Buffer,
  ) {}

  async list(): Promise<CredentialSetView[]> {
    const keys = await listAllKeys(this.store, CREDENTIAL_SETS_ROOT);
    const sets = await Promise.all(keys.map((k) => readJson<StoredCredentialSet>(this.store, k)));
    return sets
      .filter((s): s is StoredCredentialSet => s !== undefined)
      .map(view)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async show(name: string): Promise<CredentialSetView> {
    return view(await this.stored(name));
  }

  async create(input: Record<string, unknown>): Promise<CredentialSetView> {
    const name = nameOf(input.name);
    if (await this.find(name))
      throw new OciError('DENIED', `credential set "${name}" exists`, undefined, 409);
    const creds = credentialsOf(input, true)!;
    const now = new Date().toISOString();
    const rec: StoredCredentialSet = {
      name,
      ...(loginServerOf(input.loginServer) && { loginServer: loginServerOf(input.loginServer) }),
      sealed: this.seal(name, creds),
      createdAt: now,
      updatedAt: now,
    };
    await this.write(rec);
    return view(rec);
  }

  /** Replaces the username and password (both), and/or the login server. */
  async update(name: string, input: Record<string, unknown>): Promise<CredentialSetView> {
    const rec = await this.stored(name);
    const creds = credentialsOf(input, false);
    if (creds) rec.sealed = this.seal(rec.name, creds);
    const server = loginServerOf(input.loginServer);
    if (server) rec.loginServer = server;
    rec.updatedAt = new Date().toISOString();
    await this.write(rec);
    return view(rec);
  }

  async delete(name: string): Promise<void> {
    await this.stored(name);
    await this.store.delete(CREDENTIAL_SETS_ROOT + name);
  }

  /** The username and password, for an upstream request (never for a client). */
  async credentials(name: string): Promise<UpstreamCredentials> {
    const rec = await this.stored(name);
    try {
      const raw = Buffer.from(rec.sealed, 'base64');
      const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      d.setAuthTag(raw.subarray(12, 28));
      d.setAAD(Buffer.from(rec.name));
      const plain = Buffer.concat([d.update(raw.subarray(28)), d.final()]);
      return JSON.parse(plain.toString('utf8')) as UpstreamCredentials;
    } catch {
      throw new OciError(
        'UNAVAILABLE',
        `credential set "${rec.name}" cannot be decrypted with this node's upstream.credentialKey`,
        undefined,
        503,
      );
    }
  }

  private seal(name: string, creds: UpstreamCredentials): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(name));
    const body = Buffer.concat([c.update(JSON.stringify(creds), 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  private find(name: string): Promise<StoredCredentialSet | undefined> {
    return readJson<StoredCredentialSet>(this.store, CREDENTIAL_SETS_ROOT + name);
  }

  private async stored(name: string): Promise<StoredCredentialSet> {
    const rec = NAME_RE.test(name) ? await this.find(name) : undefined;
    if (!rec)
      throw new OciError(
        'NAME_UNKNOWN',
        `no credential set "${name.slice(0, 64)}"`,
        undefined,
        404,
      );
    return rec;
  }

  private async write(rec: StoredCredentialSet): Promise<void> {
    await this.store.put(CREDENTIAL_SETS_ROOT + rec.name, Buffer.from(JSON.stringify(rec)), {
      contentType: 'application/json',
    });
  }
}

function view(s: StoredCredentialSet): CredentialSetView {
  return {
    name: s.name,
    ...(s.loginServer && { loginServer: s.loginServer }),
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  };
}

function bad(message: string): OciError {
  return new OciError('UNSUPPORTED', message, undefined, 400);
}

function nameOf(v: unknown): string {
  if (typeof v !== 'string' || !NAME_RE.test(v))
    throw bad('"name" must be 1-50 lowercase letters, digits and dashes');
  return v;
}

function loginServerOf(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(v))
    throw bad('"loginServer" must be a registry host (docker.io, ghcr.io, host:port)');
  return v;
}

function credentialsOf(
  input: Record<string, unknown>,
  required: boolean,
): UpstreamCredentials | undefined {
  const { username, password } = input;
  if (username === undefined && password === undefined && !required) return undefined;
  if (typeof username !== 'string' || username.length === 0 || username.length > 256)
    throw bad('"username" and "password" are required together, as non-empty strings');
  if (typeof password !== 'string' || password.length === 0 || password.length > 4096)
    throw bad('"username" and "password" are required together, as non-empty strings');
  return { username, password };
}
