import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import proxyaddr from 'proxy-addr';
import {
  accessAllows,
  authDecisions,
  hasRegistryPermission,
  permissionsOn,
  TokenError,
  type AccessEntry,
  type AuthService,
  type Grant,
  type Principal,
} from '@meridian/auth';
import { OciError } from '@meridian/oci';

export interface AuthOptions {
  service: AuthService;
  /** Token endpoint URL in challenges. Default: the request's scheme and Host + `/oauth2/token`. */
  realm?: string;
  /** Require authentication for `/metrics`. Default false. */
  protectMetrics?: boolean;
  /** Require authentication for `/healthz` and `/readyz`. Default false. */
  protectHealth?: boolean;
  /**
   * Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (the gateway, a load
   * balancer): addresses or CIDR ranges (`10.0.0.0/8`), or proxy-addr's names (`loopback`,
   * `linklocal`, `uniquelocal`). Default: `loopback`.
   */
  trustedProxies?: string[];
}

/** What a request needs. Repository needs list alternatives: any one action suffices. */
export type Need =
  | { kind: 'public' }
  /** Any valid credential or token, an anonymous token included (`GET /v2/`). */
  | { kind: 'token' }
  /** A signed-in identity (status APIs, the dashboard). */
  | { kind: 'identity' }
  | { kind: 'admin' }
  | { kind: 'catalog' }
  | { kind: 'repository'; name: string; actions: string[]; challenge: string };

/** Who a request was authenticated as, and how (what its credentials allow). */
interface Authenticated {
  principal: Principal;
  /** Basic or anonymous: the principal's grants. */
  grants?: Grant[];
  /** Bearer: the token's access entries. */
  access?: AccessEntry[];
}

const ACTION_PERMISSION: Record<
  string,
  'pull' | 'push' | 'delete' | 'metadata_read' | 'metadata_write'
> = {
  pull: 'pull',
  push: 'push',
  delete: 'delete',
  metadata_read: 'metadata_read',
  metadata_write: 'metadata_write',
};

/**
 * The one authorization check every request passes before its handler: the `/v2` dispatcher
 * and the express routes (admin, status, dashboard) alike. Accepts a bearer JWT from the token
 * service or Basic credentials; answers 401 with the Docker token challenge, 403 `DENIED` when
 * the identity lacks the permission, 429 when its logins are throttled.
 */
export class AuthGate {
  private readonly results = new WeakMap<IncomingMessage, Authenticated>();
  private readonly trust: (addr: string, i: number) => boolean;

  constructor(readonly opts: AuthOptions) {
    this.trust = proxyaddr.compile(opts.trustedProxies ?? ['loopback']);
  }

  get auth(): AuthService {
    return this.opts.service;
  }

  /** The principal a request was authenticated as (after `check`). */
  principalOf(req: IncomingMessage): Principal | undefined {
    return this.results.get(req)?.principal;
  }

  /** The client's address: the peer, or what a chain of trusted proxies says it saw. */
  clientAddress(req: IncomingMessage): string {
    if (!req.socket.remoteAddress) return '-';
    return proxyaddr(req, this.trust);
  }

  /** The token endpoint URL for challenges. */
  realm(req: IncomingMessage): string {
    if (this.opts.realm) return this.opts.realm;
    const tls = (req.socket as TLSSocket).encrypted === true;
    let proto = tls ? 'https' : 'http';
    const fwdProto = req.headers['x-forwarded-proto'];
    const peer = req.socket.remoteAddress;
    if (typeof fwdProto === 'string' && peer && this.trust(peer, 0)) {
      // Only the two schemes a registry is reached by; anything else is ignored, never echoed.
      const first = fwdProto.split(',')[0]!.trim().toLowerCase();
      if (first === 'http' || first === 'https') proto = first;
    }
    const host = (req.headers.host ?? 'localhost').replace(/[^\w.:[\]-]/g, '');
    return `${proto}://${host}/oauth2/token`;
  }

  /**
   * Authenticates the request and checks `need`. Throws an `OciError` (401/403/429) after
   * setting the challenge headers on `res`.
   */
  async check(req: IncomingMessage, res: ServerResponse, need: Need, v2: boolean): Promise<void> {
    if (need.kind === 'public') return;
    const who = await this.authenticate(req, res, need, v2);
    this.results.set(req, who);
    const anonymous = who.principal.kind === 'anonymous';
    const deny = (insufficientScope: boolean): never => {
      if (anonymous || insufficientScope) {
        authDecisions.inc({ result: 'unauthenticated' });
        this.challenge(req, res, need, v2, insufficientScope ? 'insufficient_scope' : undefined);
        throw new OciError('UNAUTHORIZED', 'authentication required', scopeDetail(need));
      }
      authDecisions.inc({ result: 'denied' });
      throw new OciError('DENIED', 'requested access to the resource is denied', scopeDetail(need));
    };
    switch (need.kind) {
      case 'token':
        if (anonymous && !who.access) deny(false);
        break;
      case 'identity':
        if (anonymous) deny(false);
        break;
      case 'admin':
        if (!hasRegistryPermission(this.auth.grantsFor(who.principal), 'admin')) deny(false);
        break;
      case 'catalog':
        if (!this.allows(who, need)) deny(this.couldGet(who, need));
        break;
      case 'repository':
        if (!this.allows(who, need)) deny(this.couldGet(who, need));
        break;
    }
    authDecisions.inc({ result: 'allowed' });
  }

  /** Whether an already checked request may also pull `repository` (cross-repository mounts). */
  mayPull(req: IncomingMessage, repository: string): boolean {
    const who = this.results.get(req);
    if (!who) return true;
    return this.allows(who, {
      kind: 'repository',
      name: repository,
      actions: ['pull'],
      challenge: 'pull',
    });
  }

  private allows(who: Authenticated, need: Need): boolean {
    if (need.kind === 'catalog')
      return who.access
        ? accessAllows(who.access, 'registry', 'catalog', '*')
        : hasRegistryPermission(who.grants ?? [], 'metadata_read');
    if (need.kind !== 'repository') return false;
    if (who.access)
      return need.actions.some((a) => accessAllows(who.access!, 'repository', need.name, a));
    const have = permissionsOn(who.grants ?? [], need.name);
    return need.actions.some((a) => {
      const p = ACTION_PERMISSION[a];
      return p !== undefined && have.has(p);
    });
  }

  /** A bearer token lacks the scope but its principal has it: the client should get a new token. */
  private couldGet(who: Authenticated, need: Need): boolean {
    if (!who.access || who.principal.kind === 'anonymous') return false;
    return this.allows(
      { principal: who.principal, grants: this.auth.grantsFor(who.principal) },
      need,
    );
  }

  private async authenticate(
    req: IncomingMessage,
    res: ServerResponse,
    need: Need,
    v2: boolean,
  ): Promise<Authenticated> {
    const header = req.headers.authorization;
    const anonymous: Principal = { kind: 'anonymous', name: 'anonymous' };
    if (!header) return { principal: anonymous, grants: this.auth.grantsFor(anonymous) };
    const space = header.indexOf(' ');
    const scheme = (space > 0 ? header.slice(0, space) : header).toLowerCase();
    const value = space > 0 ? header.slice(space + 1).trim() : '';
    if (scheme === 'bearer') {
      try {
        const v = await this.auth.verifyAccessToken(value);
        return { principal: v.principal, access: v.access };
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
        authDecisions.inc({ result: 'invalid_token' });
        this.challenge(req, res, need, v2, 'invalid_token');
        throw new OciError('UNAUTHORIZED', 'invalid or expired token');
      }
    }
    if (scheme === 'basic') {
      const creds = parseBasic(value);
      if (creds) {
        try {
          const principal = await this.auth.login(creds.user, creds.password, {
            address: this.clientAddress(req),
            method: 'basic',
          });
          return { principal, grants: this.auth.grantsFor(principal) };
        } catch (err) {
          if (err instanceof OciError && err.code === 'UNAUTHORIZED')
            this.challenge(req, res, need, v2);
          if (err instanceof OciError && err.code === 'TOOMANYREQUESTS')
            res.setHeader('Retry-After', String((err.detail as { retryAfter: number }).retryAfter));
          throw err;
        }
      }
    }
    this.challenge(req, res, need, v2);
    throw new OciError('UNAUTHORIZED', 'unsupported authorization scheme');
  }

  /** Sets the `WWW-Authenticate` challenge (Bearer; plus Basic outside `/v2` for browsers). */
  private challenge(
    req: IncomingMessage,
    res: ServerResponse,
    need: Need,
    v2: boolean,
    error?: 'invalid_token' | 'insufficient_scope',
  ): void {
    let bearer = `Bearer realm="${this.realm(req)}",service="${this.auth.service}"`;
    const scope = scopeOf(need);
    if (scope) bearer += `,scope="${scope}"`;
    if (error) bearer += `,error="${error}"`;
    res.setHeader(
      'WWW-Authenticate',
      v2 ? bearer : [bearer, `Basic realm="${this.auth.service}", charset="UTF-8"`],
    );
  }
}

function scopeOf(need: Need): string | undefined {
  if (need.kind === 'repository') return `repository:${need.name}:${need.challenge}`;
  if (need.kind === 'catalog') return 'registry:catalog:*';
  return undefined;
}

function scopeDetail(need: Need): unknown {
  if (need.kind === 'repository')
    return [{ Type: 'repository', Name: need.name, Action: need.challenge }];
  if (need.kind === 'catalog') return [{ Type: 'registry', Name: 'catalog', Action: '*' }];
  return undefined;
}

/** `user:password` from a Basic credential; undefined when malformed. */
export function parseBasic(value: string): { user: string; password: string } | undefined {
  if (value.length > 4096) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i <= 0) return undefined;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}
