import type { Request } from 'express';
import { AdminError, type Actor, type PasswordSlot, type Role } from '@meridian/auth';
import { OciError, type OciErrorCode } from '@meridian/oci';
import type { AuthGate, Need } from '../http/auth-gate';
import { jsonObjectBody } from './admin-json';
import type { AppRoute, Method } from '../http/route-table';

const BASE = '/meridian/v1/admin';

/** The `:name` and `:slot` segments (present whenever a route's template names them). */
interface PathParams {
  name: string;
  slot: string;
}

/**
 * The admin API (`/meridian/v1/admin/...`, JSON): identities, roles, the admin user, scope
 * maps, repository-scoped tokens, registry settings and the audit log — as route-table entries,
 * each needing `Owner` on the registry (`whoami` only a signed-in identity). Each handler makes
 * one call into the AdminService; errors go to the node's one error writer. Passwords appear in
 * a response only when they were just generated.
 */
export function adminRoutes(gate: AuthGate): AppRoute[] {
  const admin = gate.auth.admin;
  const routes: AppRoute[] = [];
  const actor = (req: Request): Actor => ({
    principal: gate.principalOf(req) ?? { kind: 'anonymous', name: 'anonymous' },
    address: gate.clientAddress(req),
  });
  const body = (req: Request) => jsonObjectBody(req, true);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const add = (
    method: Method,
    path: string,
    status: number,
    fn: (req: Request, p: PathParams) => Promise<unknown>,
    need: Need = { kind: 'admin' },
  ): void => {
    routes.push({
      method,
      path,
      need,
      body: method === 'GET' || method === 'DELETE' ? undefined : 'json',
      handle: async (req, res, params) => {
        let out: unknown;
        try {
          out = await fn(req, params as unknown as PathParams);
        } catch (err) {
          throw err instanceof AdminError ? adminToOci(err) : err;
        }
        if (out === undefined) res.status(204).end();
        else res.status(status).json(out);
      },
    });
  };

  add(
    'GET',
    '/meridian/v1/whoami',
    200,
    async (req) => {
      const principal = gate.principalOf(req);
      return {
        ...principal,
        credential: undefined,
        grants: principal ? gate.auth.grantsFor(principal) : [],
      };
    },
    { kind: 'identity' },
  );

  add('GET', `${BASE}/settings`, 200, async () => admin.settings());
  add('PATCH', `${BASE}/settings`, 200, async (req) =>
    admin.updateSettings(actor(req), { anonymousPull: body(req).anonymousPull as boolean }),
  );

  add('GET', `${BASE}/admin-user`, 200, async () => admin.adminUser());
  add('POST', `${BASE}/admin-user/enable`, 200, async (req) => {
    // The state after the change: read once it is made, not before.
    const newPasswords = await admin.setAdminUserEnabled(actor(req), true);
    return { ...admin.adminUser(), newPasswords };
  });
  add('POST', `${BASE}/admin-user/disable`, 200, async (req) => {
    await admin.setAdminUserEnabled(actor(req), false);
    return admin.adminUser();
  });
  add('POST', `${BASE}/admin-user/passwords/:slot`, 200, async (req, p) =>
    admin.regenerateAdminPassword(actor(req), p.slot as PasswordSlot['name']),
  );

  add('GET', `${BASE}/identities`, 200, async () => ({ identities: admin.listIdentities() }));
  add('POST', `${BASE}/identities`, 201, async (req) => {
    const b = body(req);
    return admin.createIdentity(actor(req), {
      kind: (str(b.kind) ?? 'user') as 'user' | 'service',
      name: str(b.name) ?? '',
      password: str(b.password),
      roles: Array.isArray(b.roles) ? (b.roles as { role: Role; scope: string }[]) : [],
    });
  });
  add('GET', `${BASE}/identities/:name`, 200, async (req, p) => admin.identity(p.name));
  add('DELETE', `${BASE}/identities/:name`, 204, async (req, p) => {
    await admin.deleteIdentity(actor(req), p.name);
  });
  for (const state of ['enable', 'disable'] as const) {
    add('POST', `${BASE}/identities/:name/${state}`, 200, async (req, p) =>
      admin.setIdentityEnabled(actor(req), p.name, state === 'enable'),
    );
    add('POST', `${BASE}/tokens/:name/${state}`, 200, async (req, p) =>
      admin.setTokenEnabled(actor(req), p.name, state === 'enable'),
    );
  }
  add('POST', `${BASE}/identities/:name/passwords/:slot`, 200, async (req, p) =>
    admin.setIdentityPassword(actor(req), p.name, {
      slot: p.slot as PasswordSlot['name'],
      password: str(body(req).password),
      expiresAt: str(body(req).expiresAt),
    }),
  );
  add('POST', `${BASE}/identities/:name/roles`, 200, async (req, p) =>
    admin.assignRole(actor(req), p.name, {
      role: str(body(req).role) as Role,
      scope: str(body(req).scope) ?? '*',
    }),
  );
  add('DELETE', `${BASE}/identities/:name/roles`, 200, async (req, p) =>
    admin.removeRole(actor(req), p.name, {
      role: str(req.query.role) as Role,
      scope: str(req.query.scope) ?? '*',
    }),
  );

  add('GET', `${BASE}/scope-maps`, 200, async () => ({ scopeMaps: admin.listScopeMaps() }));
  add('POST', `${BASE}/scope-maps`, 201, async (req) => {
    const b = body(req);
    return admin.createScopeMap(actor(req), {
      name: str(b.name) ?? '',
      description: str(b.description),
      rules: b.rules as never,
    });
  });
  add('GET', `${BASE}/scope-maps/:name`, 200, async (req, p) => admin.scopeMap(p.name));
  add('PATCH', `${BASE}/scope-maps/:name`, 200, async (req, p) => {
    const b = body(req);
    return admin.updateScopeMap(actor(req), p.name, {
      description: str(b.description),
      rules: b.rules as never,
    });
  });
  add('DELETE', `${BASE}/scope-maps/:name`, 204, async (req, p) => {
    await admin.deleteScopeMap(actor(req), p.name);
  });

  add('GET', `${BASE}/tokens`, 200, async () => ({ tokens: admin.listTokens() }));
  add('POST', `${BASE}/tokens`, 201, async (req) => {
    const b = body(req);
    return admin.createToken(actor(req), {
      name: str(b.name) ?? '',
      scopeMap: str(b.scopeMap) ?? '',
      enabled: typeof b.enabled === 'boolean' ? b.enabled : undefined,
      expiresAt: str(b.expiresAt),
      passwords: b.passwords !== false,
    });
  });
  add('GET', `${BASE}/tokens/:name`, 200, async (req, p) => admin.token(p.name));
  add('PATCH', `${BASE}/tokens/:name`, 200, async (req, p) =>
    admin.setTokenScopeMap(actor(req), p.name, str(body(req).scopeMap) ?? ''),
  );
  add('DELETE', `${BASE}/tokens/:name`, 204, async (req, p) => {
    await admin.deleteToken(actor(req), p.name);
  });
  add('POST', `${BASE}/tokens/:name/passwords/:slot`, 200, async (req, p) =>
    admin.generateTokenPassword(
      actor(req),
      p.name,
      p.slot as PasswordSlot['name'],
      str(body(req).expiresAt),
    ),
  );
  add('DELETE', `${BASE}/tokens/:name/passwords/:slot`, 200, async (req, p) =>
    admin.deleteTokenPassword(actor(req), p.name, p.slot as PasswordSlot['name']),
  );

  add('GET', `${BASE}/audit`, 200, async (req) => {
    const q = req.query;
    const date = (v: unknown) => {
      if (typeof v !== 'string' || v === '') return undefined;
      const t = Date.parse(v);
      if (Number.isNaN(t)) throw new AdminError(400, `invalid time: ${v}`);
      return new Date(t);
    };
    return {
      events: await admin.queryAudit({
        since: date(q.since),
        until: date(q.until),
        actor: str(q.actor),
        action: str(q.action),
        outcome: str(q.outcome),
        limit: q.limit === undefined ? undefined : Number(q.limit),
      }),
    };
  });
  return routes;
}

/** The admin service's refusals as the one OCI error shape (statuses kept). */
function adminToOci(err: AdminError): OciError {
  const code: OciErrorCode =
    err.status === 404 ? 'NAME_UNKNOWN' : err.status === 409 ? 'DENIED' : 'UNSUPPORTED';
  return new OciError(code, err.message, undefined, err.status);
}
