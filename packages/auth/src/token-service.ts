import { randomUUID } from 'node:crypto';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type JWK,
  type JWTPayload,
  type KeyLike,
} from 'jose';
import { readJson, type ObjectStore } from '@meridian/storage';
import type { AccessEntry } from './access';
import { AuthLayout } from './auth-layout';
import type { Principal, PrincipalKind, PublicKeyRecord } from './model';

const ALG = 'ES256';

/** A region's signing key: every node of the region shares it; other regions know its public half. */
export interface SigningKey {
  kid: string;
  region: string;
  privateKey: KeyLike;
  publicKey: KeyLike;
  publicJwk: JWK;
}

interface StoredSigningKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
  createdAt: string;
}

/**
 * Loads the region's signing key from the region's own store, generating it on first use. Two
 * nodes starting at once may both generate one; each then signs with what it read back and
 * publishes that key's public half, so both keep verifying everywhere.
 */
export async function loadSigningKey(store: ObjectStore, region: string): Promise<SigningKey> {
  const key = AuthLayout.signingKey(region);
  let stored = await readJson<StoredSigningKey>(store, key);
  if (!stored) {
    const pair = await generateKeyPair(ALG, { extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    const privateJwk = await exportJWK(pair.privateKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    stored = { kid, privateJwk, publicJwk, createdAt: new Date().toISOString() };
    await store.put(key, Buffer.from(JSON.stringify(stored)));
    stored = (await readJson<StoredSigningKey>(store, key)) ?? stored;
  }
  return {
    kid: stored.kid,
    region,
    privateKey: (await importJWK(stored.privateJwk, ALG)) as KeyLike,
    publicKey: (await importJWK(stored.publicJwk, ALG)) as KeyLike,
    publicJwk: { ...stored.publicJwk, kid: stored.kid, alg: ALG, use: 'sig' },
  };
}

export interface TokenServiceOptions {
  /** `iss` of every token. */
  issuer: string;
  /** `aud`: the registry service name; a token for another service is refused. */
  service: string;
  key: SigningKey;
  /** Published public keys of every region (from the credential snapshot). */
  keys: () => Map<string, PublicKeyRecord>;
  /** Called once for a `kid` not yet known, to reload the credential snapshot. */
  onUnknownKey: () => Promise<void>;
  /** Access token lifetime, s. Default 300. */
  accessTtlSeconds?: number;
  /** Refresh token (the identity token `docker login` keeps) lifetime, s. Default 30 days. */
  refreshTtlSeconds?: number;
}

export interface VerifiedToken {
  principal: Principal;
  access: AccessEntry[];
  /** Region whose key signed the token. */
  keyRegion: string;
  expiresAt: number;
}

export class TokenError extends Error {}

type Use = 'access' | 'refresh';

interface Claims extends JWTPayload {
  kind?: PrincipalKind;
  use?: Use;
  access?: AccessEntry[];
  cred?: string;
}

/**
 * Issues and verifies ES256 JWTs. Verification is local: the signing region's public key comes
 * from the replicated credential records, so a token issued in one region works in every other.
 */
export class TokenService {
  readonly accessTtlSeconds: number;
  readonly refreshTtlSeconds: number;
  private readonly imported = new Map<string, KeyLike>();
  private lastUnknownReload = 0;

  constructor(private readonly opts: TokenServiceOptions) {
    this.accessTtlSeconds = opts.accessTtlSeconds ?? 300;
    this.refreshTtlSeconds = opts.refreshTtlSeconds ?? 30 * 24 * 3600;
  }

  get kid(): string {
    return this.opts.key.kid;
  }

  /** The public key record this node publishes. */
  publicKeyRecord(): PublicKeyRecord {
    const { key } = this.opts;
    return {
      kid: key.kid,
      region: key.region,
      jwk: { ...key.publicJwk },
      createdAt: new Date().toISOString(),
    };
  }

  async issue(
    principal: Principal,
    use: Use,
    access: AccessEntry[] = [],
  ): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const ttl = use === 'access' ? this.accessTtlSeconds : this.refreshTtlSeconds;
    const now = Math.floor(Date.now() / 1000);
    const claims: Claims = { kind: principal.kind, use };
    if (use === 'access') claims.access = access;
    if (principal.credential) claims.cred = principal.credential;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: this.opts.key.kid, typ: 'JWT' })
      .setIssuer(this.opts.issuer)
      .setAudience(this.opts.service)
      .setSubject(principal.name)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + ttl)
      .setJti(randomUUID())
      .sign(this.opts.key.privateKey);
    return { token, expiresIn: ttl, issuedAt: new Date(now * 1000) };
  }

  /** Verifies signature, issuer, audience, lifetime and use. Throws `TokenError`. */
  async verify(token: string, use: Use): Promise<VerifiedToken> {
    let keyRegion = '';
    let payload: Claims;
    try {
      ({ payload } = await jwtVerify<Claims>(
        token,
        async (header) => {
          const found = await this.keyFor(header.kid);
          keyRegion = found.region;
          return found.key;
        },
        {
          issuer: this.opts.issuer,
          audience: this.opts.service,
          algorithms: [ALG],
          clockTolerance: 30,
          requiredClaims: ['exp', 'sub', 'iat'],
        },
      ));
    } catch (err) {
      throw new TokenError(err instanceof Error ? err.message : 'invalid token');
    }
    if (payload.use !== use) throw new TokenError(`not an ${use} token`);
    const kind = payload.kind;
    if (!kind || !KINDS.has(kind)) throw new TokenError('unknown principal kind');
    if (kind === 'node' && payload.sub !== keyRegion)
      throw new TokenError('a node token must be signed by its own region');
    const access = Array.isArray(payload.access) ? payload.access.filter(isAccessEntry) : [];
    return {
      principal: { kind, name: payload.sub!, credential: payload.cred },
      access,
      keyRegion,
      expiresAt: payload.exp! * 1000,
    };
  }

  private async keyFor(kid: string | undefined): Promise<{ key: KeyLike; region: string }> {
    if (!kid) throw new TokenError('token has no key id');
    const own = this.opts.key;
    if (kid === own.kid) return { key: own.publicKey, region: own.region };
    let record = this.opts.keys().get(kid);
    if (!record && Date.now() - this.lastUnknownReload > 1000) {
      this.lastUnknownReload = Date.now();
      await this.opts.onUnknownKey();
      record = this.opts.keys().get(kid);
    }
    if (!record) throw new TokenError('token signed by an unknown key');
    let key = this.imported.get(kid);
    if (!key) {
      key = (await importJWK(record.jwk as unknown as JWK, ALG)) as KeyLike;
      this.imported.set(kid, key);
    }
    return { key, region: record.region };
  }
}

const KINDS = new Set<PrincipalKind>([
  'user',
  'service',
  'admin-user',
  'token',
  'anonymous',
  'node',
]);

function isAccessEntry(v: unknown): v is AccessEntry {
  const e = v as AccessEntry;
  return (
    typeof e === 'object' &&
    e !== null &&
    (e.type === 'repository' || e.type === 'registry') &&
    typeof e.name === 'string' &&
    Array.isArray(e.actions) &&
    e.actions.every((a) => typeof a === 'string')
  );
}
