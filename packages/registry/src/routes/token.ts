import type { Response } from 'express';
import type { Principal } from '@meridian/auth';
import { OciError } from '@meridian/oci';
import { parseBasic, type AuthGate } from '../http/auth-gate';
import type { AppRoute } from '../http/route-table';

/**
 * The token endpoint of the Docker/OCI token flow, `/oauth2/token`:
 * - `GET` with Basic credentials (or none: an anonymous token) and `scope`/`service` in the
 *   query — docker, podman, skopeo, containerd; `offline_token=true` adds a refresh token.
 * - `POST` form with `grant_type=password` (username, password) or `refresh_token`, as
 *   `docker login` does; it returns a `refresh_token` (the identity token docker keeps).
 * The JWT carries exactly the granted part of the requested scopes.
 */
export function tokenRoutes(gate: AuthGate): AppRoute[] {
  const { auth } = gate;

  const reply = async (
    res: Response,
    principal: Principal,
    scopes: string[],
    withRefresh: boolean,
    refreshToken?: string,
  ) => {
    const t = await auth.issueAccessToken(principal, scopes);
    const body: Record<string, unknown> = {
      token: t.token,
      access_token: t.token,
      token_type: 'Bearer',
      expires_in: t.expiresIn,
      issued_at: t.issuedAt.toISOString(),
      scope: t.access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' '),
    };
    if (withRefresh && principal.kind !== 'anonymous')
      body.refresh_token = refreshToken ?? (await auth.issueRefreshToken(principal));
    res.set('Cache-Control', 'no-store').json(body);
  };

  /** The challenge a failed login gets; the error itself goes to the one error writer. */
  const fail = (res: Response, err: unknown): never => {
    if (err instanceof OciError && err.code === 'UNAUTHORIZED')
      res.set('WWW-Authenticate', `Basic realm="${auth.service}", charset="UTF-8"`);
    throw err;
  };

  const checkService = (service: unknown) => {
    if (typeof service === 'string' && service !== '' && service !== auth.service)
      throw new OciError('DENIED', `this token service issues tokens for "${auth.service}"`, {
        service: auth.service,
      });
  };

  const get: AppRoute = {
    method: 'GET',
    path: '/oauth2/token',
    need: { kind: 'public' },
    handle: async (req, res) => {
      try {
        checkService(req.query.service);
        const scopes = list(req.query.scope);
        let principal: Principal = { kind: 'anonymous', name: 'anonymous' };
        const header = req.headers.authorization;
        if (header) {
          const creds = header.toLowerCase().startsWith('basic ')
            ? parseBasic(header.slice(6).trim())
            : undefined;
          if (!creds) throw new OciError('UNAUTHORIZED', 'Basic credentials expected');
          principal = await auth.login(creds.user, creds.password, {
            address: gate.clientAddress(req),
            method: 'token-get',
          });
        }
        await reply(res, principal, scopes, req.query.offline_token === 'true');
      } catch (err) {
        fail(res, err);
      }
    },
  };

  const post: AppRoute = {
    method: 'POST',
    path: '/oauth2/token',
    need: { kind: 'public' },
    body: 'form',
    handle: async (req, res) => {
      try {
        const form = (req.body ?? {}) as Record<string, unknown>;
        checkService(form.service);
        const scopes = list(form.scope);
        const ctx = { address: gate.clientAddress(req), method: String(form.grant_type) };
        if (form.grant_type === 'password') {
          if (typeof form.username !== 'string' || typeof form.password !== 'string')
            throw new OciError('UNAUTHORIZED', 'username and password are required');
          const principal = await auth.login(form.username, form.password, ctx);
          await reply(res, principal, scopes, form.access_type === 'offline');
        } else if (form.grant_type === 'refresh_token') {
          if (typeof form.refresh_token !== 'string')
            throw new OciError('UNAUTHORIZED', 'refresh_token is required');
          const principal = await auth.refresh(form.refresh_token, ctx);
          await reply(res, principal, scopes, true, form.refresh_token);
        } else {
          // RFC 6749 §5.2's fields beside the OCI error shape every endpoint answers with.
          const err = new OciError(
            'UNSUPPORTED',
            'grant_type must be password or refresh_token',
            undefined,
            400,
          );
          res.status(400).json({
            ...err.toBody(),
            error: 'unsupported_grant_type',
            error_description: err.message,
          });
        }
      } catch (err) {
        fail(res, err);
      }
    },
  };
  return [get, post];
}

/** Query/form values as a list (`scope` may repeat). */
function list(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}
