import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { OciError } from '@meridian/oci';
import type { ObjectStore } from '@meridian/storage';
import { grantAccess, parseScopes, type AccessEntry } from './access';
import { AdminService } from './admin-service';
import { AuditLog } from './audit-log';
import { AuthLayout } from './auth-layout';
import { CredentialStore } from './credential-store';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle';
import { authLogins, authTokensIssued } from './metrics';
import type { Grant, PasswordSlot, Principal } from './model';
import type { KdfPoolOptions } from './kdf-pool';
import {
  credentialFingerprint,
  generatePassword,
  kdfPool,
  verifyDummy,
  verifyPassword,
} from './passwords';
import { expired, findLogin, grantsFor } from './principals';
import { loadSigningKey, TokenError, TokenService, type VerifiedToken } from './token-service';

export interface AuthServiceOptions {
  /**
   * The registry's name: the token `aud`/service, the issuer, and the admin user's username.
   * Must be the same in every region. Default `meridian`.
   */
  registryName?: string;
  /** This node's region (its signing key, its audit events). */
  region: string;
  /** The primary region's store (source of truth of credentials). */
  source: ObjectStore;
  /** This node's region's store (the mirror, the signing key, the audit log). */
  local: ObjectStore;
  /** Every region's store, for audit queries. Default: this region's. */
  auditStores?: { region: string; store: ObjectStore }[];
  /** Access token lifetime, s. Default 300. */
  tokenTtlSeconds?: number;
  /** Refresh token lifetime, s. Default 30 days. */
  refreshTokenTtlSeconds?: number;
  /** How often credential changes are picked up, ms. Default 2000. */
  pollIntervalMs?: number;
  /** Failed-login limits, per (identity, address) and per address; optionally in Redis. */
  throttle?: LoginThrottleOptions;
  /** The password KDF's pool (process-wide: applied to `kdfPool`). Default 1 at once, 16 queued. */
  kdf?: KdfPoolOptions;
  /**
   * Create the `owner` identity in `start()` on a fresh store (only one node should: the
   * primary). Its password is `ownerPassword`, or a generated one returned by `start()`.
   * `meridian serve` leaves this off and calls `bootstrapOwner()` once the node listens.
   */
  bootstrapOwner?: boolean;
  /**
   * How long a failed or refused login waits before it is answered, ms (see `login`). Never
   * applies to a successful one. Default 1000.
   */
  failureDelayMs?: number;
  ownerPassword?: string;
  log: Logger;
}

export interface LoginContext {
  /** Client address (throttling, audit). */
  address: string;
  /** `basic` (on the API), `token-get`, `password` or `refresh_token` (token endpoint). */
  method: string;
}

/** Returned by `start()` when this start created the owner identity. */
export interface OwnerCreated {
  name: string;
  /** Set only when the password was generated (it is shown once, never stored in clear). */
  generatedPassword?: string;
}

const INVALID = 'invalid username or password';

/**
 * Identity and access for one node: password logins (throttled, audited), grants from roles and
 * scope maps, token issuing and local verification, and the admin operations.
 */
export class AuthService {
  readonly registryName: string;
  readonly credentials: CredentialStore;
  readonly audit: AuditLog;
  readonly throttle: LoginThrottle;
  readonly admin: AdminService;
  private tokenService: TokenService | undefined;
  private publishTimer: NodeJS.Timeout | undefined;
  /** Recently verified passwords (an HMAC under a per-process key, never the password). */
  private readonly verified = new LRUCache<string, string>({ max: 10_000, ttl: 5 * 60_000 });
  private readonly hmacKey = randomBytes(32);
  /** Checks in flight, by the same HMAC: identical concurrent attempts share one hash. */
  private readonly inflight = new Map<string, Promise<PasswordSlot | undefined>>();
  /** Failed logins waiting out `failureDelayMs`. */
  private delayed = 0;
  private readonly nodeTokens = new LRUCache<string, { token: string; until: number }>({
    max: 10_000,
  });

  constructor(private readonly opts: AuthServiceOptions) {
    this.registryName = opts.registryName ?? 'meridian';
    this.credentials = new CredentialStore({
      source: opts.source,
      local: opts.local,
      pollIntervalMs: opts.pollIntervalMs,
      log: opts.log,
    });
    this.audit = new AuditLog({
      store: opts.local,
      region: opts.region,
      readStores: opts.auditStores,
      log: opts.log,
    });
    this.throttle = new LoginThrottle(opts.throttle);
    if (opts.kdf) kdfPool.configure(opts.kdf);
    this.admin = new AdminService(this.credentials, this.audit, this.registryName);
  }

  get tokens(): TokenService {
    if (!this.tokenService) throw new Error('AuthService.start() was not called');
    return this.tokenService;
  }

  /** The registry service name clients see in challenges (`service=`). */
  get service(): string {
    return this.registryName;
  }

  async start(): Promise<OwnerCreated | undefined> {
    const { opts } = this;
    await this.credentials.start();
    const key = await loadSigningKey(opts.local, opts.region);
    this.tokenService = new TokenService({
      issuer: this.registryName,
      service: this.registryName,
      key,
      keys: () => this.credentials.snapshot.keys,
      onUnknownKey: () => this.credentials.refresh(true),
      accessTtlSeconds: opts.tokenTtlSeconds,
      refreshTtlSeconds: opts.refreshTokenTtlSeconds,
    });
    let created: OwnerCreated | undefined;
    if (opts.bootstrapOwner) created = await this.bootstrapOwner();
    await this.publishKey();
    return created;
  }

  async close(): Promise<void> {
    if (this.publishTimer) clearTimeout(this.publishTimer);
    this.credentials.close();
    await this.throttle.close();
    await this.audit.close();
  }

  /**
   * On a store never initialised (and readable): creates the `owner` identity with the Owner
   * role on the registry, with `password` or a generated one (returned, shown once).
   */
  async bootstrapOwner(password = this.opts.ownerPassword): Promise<OwnerCreated | undefined> {
    const { snapshot, sourceReachable } = this.credentials;
    if (!sourceReachable || snapshot.initialized) return undefined;
    const generated = password ? undefined : generatePassword();
    const actor = { principal: { kind: 'node' as const, name: this.opts.region }, address: '-' };
    if (!snapshot.identities.has('owner'))
      await this.admin.createIdentity(actor, {
        kind: 'user',
        name: 'owner',
        password: password ?? generated!,
        roles: [{ role: 'Owner', scope: '*' }],
      });
    await this.credentials.mutate(AuthLayout.initialized, () => ({
      at: new Date().toISOString(),
    }));
    return { name: 'owner', generatedPassword: generated };
  }

  /** Whether the `owner` identity exists and `password` is one of its passwords (one KDF run). */
  async ownerHasPassword(password: string): Promise<boolean> {
    const slots = (this.credentials.snapshot.identities.get('owner')?.passwords ?? []).filter(
      (s) => !expired(s),
    );
    return (await this.checkPassword(password, slots)) !== undefined;
  }

  /** Publishes this region's public key until it is in the replicated records. */
  private async publishKey(): Promise<void> {
    const record = this.tokens.publicKeyRecord();
    if (this.credentials.snapshot.keys.has(record.kid)) return;
    try {
      await this.credentials.mutate(AuthLayout.publicKey(record.kid), () => record);
    } catch {
      this.publishTimer = setTimeout(() => void this.publishKey(), 5000);
      this.publishTimer.unref();
    }
  }

  /**
   * Checks a username and password. Throws `UNAUTHORIZED` (one message for every cause) or
   * `TOOMANYREQUESTS` (this identity from this address, or this address, failed too often; or
   * the KDF pool is full); records the attempt in the audit log.
   *
   * The attempt is counted before the password is hashed, and given back if it succeeds, so
   * concurrent guesses cannot outrun the throttle. A credential verified in the last five
   * minutes is not hashed again, and identical attempts in flight share one hash.
   */
  async login(username: string, password: string, ctx: LoginContext): Promise<Principal> {
    try {
      return await this.checkLogin(username, password, ctx);
    } catch (err) {
      if (err instanceof OciError) await this.failureDelay();
      throw err;
    }
  }

  /**
   * A failed or refused login is answered after `failureDelayMs` (as sshd and PAM do): a timer,
   * no thread and no CPU, so a client that retries at once cannot turn cheap refusals into a
   * request flood. At most 1000 wait at a time; beyond, the answer is immediate.
   */
  private async failureDelay(): Promise<void> {
    const ms = this.opts.failureDelayMs ?? 1000;
    if (ms <= 0 || this.delayed >= 1000) return;
    this.delayed++;
    try {
      await new Promise((r) => setTimeout(r, ms));
    } finally {
      this.delayed--;
    }
  }

  private async checkLogin(
    username: string,
    password: string,
    ctx: LoginContext,
  ): Promise<Principal> {
    const wait = await this.throttle.retryAfter(username, ctx.address);
    if (wait > 0) this.throttled(username, ctx, wait);
    const found = this.findLogin(username);
    const slots = (found?.slots ?? []).filter((s) => !expired(s));
    const cacheKey = createHmac('sha256', this.hmacKey)
      .update(`${username}\0${password}`)
      .digest('base64url');
    const cachedHash = this.verified.get(cacheKey);
    const cached = cachedHash === undefined ? undefined : slots.find((s) => s.hash === cachedHash);
    let matched = cached;
    if (!cached) {
      let shared = this.inflight.get(cacheKey);
      if (shared) {
        matched = await shared;
        if (!matched) {
          // Its own failure, counted now (the identical attempt it shared was counted before).
          const over = await this.throttle.recordFailure(username, ctx.address);
          if (over > 0) this.throttled(username, ctx, over);
        }
      } else {
        const reservation = await this.throttle.reserve(username, ctx.address);
        if (typeof reservation === 'number') this.throttled(username, ctx, reservation);
        shared = this.checkPassword(password, slots);
        this.inflight.set(cacheKey, shared);
        try {
          matched = await shared;
        } catch (err) {
          await this.throttle.release(reservation); // never checked: not an attempt
          throw err;
        } finally {
          this.inflight.delete(cacheKey);
        }
        if (matched && found?.enabled) await this.throttle.release(reservation);
      }
    }
    const reason = !found
      ? 'unknown identity'
      : !matched
        ? 'wrong password'
        : !found.enabled
          ? 'disabled'
          : undefined;
    if (reason !== undefined || !found || !matched) {
      authLogins.inc({ outcome: 'failure', method: ctx.method });
      this.audit.record({
        actor: username,
        actorKind: found?.kind ?? 'unknown',
        action: 'login',
        outcome: 'failure',
        reason,
        address: ctx.address,
        method: ctx.method,
      });
      throw new OciError('UNAUTHORIZED', INVALID);
    }
    this.verified.set(cacheKey, matched.hash);
    if (!cached) {
      authLogins.inc({ outcome: 'success', method: ctx.method });
      this.audit.record({
        actor: username,
        actorKind: found.kind,
        action: 'login',
        outcome: 'success',
        address: ctx.address,
        method: ctx.method,
        detail: { password: matched.name },
      });
    }
    return { kind: found.kind, name: username, credential: credentialFingerprint(matched.hash) };
  }

  /** The slot `password` matches: one KDF run per slot tried (a dummy one without slots). */
  private async checkPassword(
    password: string,
    slots: PasswordSlot[],
  ): Promise<PasswordSlot | undefined> {
    for (const s of slots) if (await verifyPassword(password, s.hash)) return s;
    if (slots.length === 0) await verifyDummy(password);
    return undefined;
  }

  private throttled(username: string, ctx: LoginContext, retryAfter: number): never {
    authLogins.inc({ outcome: 'throttled', method: ctx.method });
    this.audit.record({
      actor: username,
      actorKind: 'unknown',
      action: 'login',
      outcome: 'throttled',
      address: ctx.address,
      method: ctx.method,
    });
    throw new OciError('TOOMANYREQUESTS', 'too many failed logins; try again later', {
      retryAfter,
    });
  }

  private findLogin(username: string) {
    return findLogin(this.credentials.snapshot, this.registryName, username);
  }

  /** Whether a principal named in a token still exists, is enabled and has that password. */
  isActive(p: Principal): boolean {
    if (p.kind === 'anonymous' || p.kind === 'node') return true;
    const found = this.findLogin(p.name);
    if (!found || found.kind !== p.kind || !found.enabled) return false;
    if (p.credential === undefined) return false;
    return found.slots.some((s) => !expired(s) && credentialFingerprint(s.hash) === p.credential);
  }

  /** What a principal may do, from the current records. */
  grantsFor(p: Principal): Grant[] {
    return grantsFor(this.credentials.snapshot, p);
  }

  /** An access token with exactly the granted part of `scopes`. */
  async issueAccessToken(
    p: Principal,
    scopes: string[],
  ): Promise<{ token: string; expiresIn: number; issuedAt: Date; access: AccessEntry[] }> {
    const access = grantAccess(this.grantsFor(p), parseScopes(scopes));
    const t = await this.tokens.issue(p, 'access', access);
    authTokensIssued.inc({ kind: p.kind });
    return { ...t, access };
  }

  /** A refresh token (`docker login`'s identity token), bound to the password used. */
  async issueRefreshToken(p: Principal): Promise<string> {
    return (await this.tokens.issue(p, 'refresh')).token;
  }

  /** The principal behind a refresh token, if it is still valid. Audited as a login. */
  async refresh(refreshToken: string, ctx: LoginContext): Promise<Principal> {
    let principal: Principal | undefined;
    let reason: string | undefined;
    try {
      principal = (await this.tokens.verify(refreshToken, 'refresh')).principal;
      if (!this.isActive(principal)) reason = 'credential revoked, expired or disabled';
    } catch (err) {
      reason = err instanceof TokenError ? `invalid refresh token: ${err.message}` : 'invalid';
    }
    const actor = principal?.name ?? '-';
    if (reason !== undefined || !principal) {
      authLogins.inc({ outcome: 'failure', method: ctx.method });
      this.audit.record({
        actor,
        actorKind: principal?.kind ?? 'unknown',
        action: 'login',
        outcome: 'failure',
        reason,
        address: ctx.address,
        method: ctx.method,
      });
      throw new OciError('UNAUTHORIZED', 'invalid refresh token');
    }
    authLogins.inc({ outcome: 'success', method: ctx.method });
    this.audit.record({
      actor,
      actorKind: principal.kind,
      action: 'login',
      outcome: 'success',
      address: ctx.address,
      method: ctx.method,
    });
    return principal;
  }

  /**
   * Verifies a bearer token, including that its principal is still enabled (a disabled identity
   * or token, or a regenerated password, stops working within the poll interval). Throws
   * `TokenError`.
   */
  async verifyAccessToken(token: string): Promise<VerifiedToken> {
    const v = await this.tokens.verify(token, 'access');
    if (!this.isActive(v.principal))
      throw new TokenError('credential revoked, expired or disabled');
    return v;
  }

  /**
   * A token this node presents to the primary on a replica's miss (`pull` on one repository),
   * signed with the region's key and reused until shortly before it expires.
   */
  async nodeToken(repository: string): Promise<string> {
    const cached = this.nodeTokens.get(repository);
    if (cached && cached.until > Date.now()) return cached.token;
    const access: AccessEntry[] = [{ type: 'repository', name: repository, actions: ['pull'] }];
    const t = await this.tokens.issue({ kind: 'node', name: this.opts.region }, 'access', access);
    this.nodeTokens.set(repository, {
      token: t.token,
      until: Date.now() + (t.expiresIn - 60) * 1000,
    });
    return t.token;
  }
}
