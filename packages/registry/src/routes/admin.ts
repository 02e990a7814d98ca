import express, { Router, type Request, type Response } from 'express';
import { AdminError, type Actor, type PasswordSlot, type Role } from '@meridian/auth';
import { OciError } from '@meridian/oci';
import type { AuthGate } from '../http/auth-gate';

const BASE = '/meridian/v1/admin';

/**
 * The admin API (`/meridian/v1/admin/...`, JSON): identities, roles, the admin user, scope
 * maps, repository-scoped tokens, registry settings and the audit log. The auth gate admits only
 * identities with `Owner` on the registry; each handler makes one call into the AdminService.
 * Passwords appear in a response only when they were just generated.
 */
export function adminRouter(gate: AuthGate): Router {
  const r = Router();
  const admin = gate.auth.admin;
  r.use(BASE, express.json({ limit: '64kb' }));

  const actor = (req: Request): Actor => ({
    principal: gate.principalOf(req) ?? { kind: 'anonymous', name: 'anonymous' },
    address: gate.clientAddress(req),
  });
  const body = (req: Request) => (req.body ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const param = (req: Request, k: string) => String(req.params[k]);
  type Handler = (req: Request, res: Response) => Promise<unknown>;
  const h =
    (status: number, fn: Handler) =>
    async (req: Request, res: Response): Promise<void> => {
      try {
        const out = await fn(req, res);
        if (out === undefined) res.status(204).end();
        else res.status(status).json(out);
      } catch (err) {
        if (err instanceof AdminError) res.status(err.status).json({ error: err.message });
        else if (err instanceof OciError) res.status(err.status).json({ error: err.message });
        else throw err;
      }
    };

  r.get(
    '/meridian/v1/whoami',
    h(200, async (req) => {
      const principal = gate.principalOf(req);
      return {
        ...principal,
        credential: undefined,
        grants: principal ? gate.auth.grantsFor(principal) : [],
      };
    }),
  );

  r.get(
    `${BASE}/settings`,
    h(200, async () => admin.settings()),
  );
  r.patch(
    `${BASE}/settings`,
    h(200, async (req) =>
      admin.updateSettings(actor(req), { anonymousPull: body(req).anonymousPull as boolean }),
    ),
  );

  r.get(
    `${BASE}/admin-user`,
    h(200, async () => admin.adminUser()),
  );
  r.post(
    `${BASE}/admin-user/enable`,
    h(200, async (req) => ({
      ...admin.adminUser(),
      newPasswords: await admin.setAdminUserEnabled(actor(req), true),
    })),
  );
  r.post(
    `${BASE}/admin-user/disable`,
    h(200, async (req) => {
      await admin.setAdminUserEnabled(actor(req), false);
      return admin.adminUser();
    }),
  );
  r.post(
    `${BASE}/admin-user/passwords/:slot`,
    h(200, async (req) =>
      admin.regenerateAdminPassword(actor(req), param(req, 'slot') as PasswordSlot['name']),
    ),
  );

  r.get(
    `${BASE}/identities`,
    h(200, async () => ({ identities: admin.listIdentities() })),
  );
  r.post(
    `${BASE}/identities`,
    h(201, async (req) => {
      const b = body(req);
      return admin.createIdentity(actor(req), {
        kind: (str(b.kind) ?? 'user') as 'user' | 'service',
        name: str(b.name) ?? '',
        password: str(b.password),
        roles: Array.isArray(b.roles) ? (b.roles as { role: Role; scope: string }[]) : [],
      });
    }),
  );
  r.get(
    `${BASE}/identities/:name`,
    h(200, async (req) => admin.identity(param(req, 'name'))),
  );
  r.delete(
    `${BASE}/identities/:name`,
    h(204, async (req) => {
      await admin.deleteIdentity(actor(req), param(req, 'name'));
    }),
  );
  for (const state of ['enable', 'disable'] as const) {
    r.post(
      `${BASE}/identities/:name/${state}`,
      h(200, async (req) =>
        admin.setIdentityEnabled(actor(req), param(req, 'name'), state === 'enable'),
      ),
    );
    r.post(
      `${BASE}/tokens/:name/${state}`,
      h(200, async (req) =>
        admin.setTokenEnabled(actor(req), param(req, 'name'), state === 'enable'),
      ),
    );
  }
  r.post(
    `${BASE}/identities/:name/passwords/:slot`,
    h(200, async (req) =>
      admin.setIdentityPassword(actor(req), param(req, 'name'), {
        slot: param(req, 'slot') as PasswordSlot['name'],
        password: str(body(req).password),
        expiresAt: str(body(req).expiresAt),
      }),
    ),
  );
  r.post(
    `${BASE}/identities/:name/roles`,
    h(200, async (req) =>
      admin.assignRole(actor(req), param(req, 'name'), {
        role: str(body(req).role) as Role,
        scope: str(body(req).scope) ?? '*',
      }),
    ),
  );
  r.delete(
    `${BASE}/identities/:name/roles`,
    h(200, async (req) =>
      admin.removeRole(actor(req), param(req, 'name'), {
        role: str(req.query.role) as Role,
        scope: str(req.query.scope) ?? '*',
      }),
    ),
  );

  r.get(
    `${BASE}/scope-maps`,
    h(200, async () => ({ scopeMaps: admin.listScopeMaps() })),
  );
  r.post(
    `${BASE}/scope-maps`,
    h(201, async (req) => {
      const b = body(req);
      return admin.createScopeMap(actor(req), {
        name: str(b.name) ?? '',
        description: str(b.description),
        rules: b.rules as never,
      });
    }),
  );
  r.get(
    `${BASE}/scope-maps/:name`,
    h(200, async (req) => admin.scopeMap(param(req, 'name'))),
  );
  r.patch(
    `${BASE}/scope-maps/:name`,
    h(200, async (req) => {
      const b = body(req);
      return admin.updateScopeMap(actor(req), param(req, 'name'), {
        description: str(b.description),
        rules: b.rules as never,
      });
    }),
  );
  r.delete(
    `${BASE}/scope-maps/:name`,
    h(204, async (req) => {
      await admin.deleteScopeMap(actor(req), param(req, 'name'));
    }),
  );

  r.get(
    `${BASE}/tokens`,
    h(200, async () => ({ tokens: admin.listTokens() })),
  );
  r.post(
    `${BASE}/tokens`,
    h(201, async (req) => {
      const b = body(req);
      return admin.createToken(actor(req), {
        name: str(b.name) ?? '',
        scopeMap: str(b.scopeMap) ?? '',
        enabled: typeof b.enabled === 'boolean' ? b.enabled : undefined,
        expiresAt: str(b.expiresAt),
        passwords: b.passwords !== false,
      });
    }),
  );
  r.get(
    `${BASE}/tokens/:name`,
    h(200, async (req) => admin.token(param(req, 'name'))),
  );
  r.patch(
    `${BASE}/tokens/:name`,
    h(200, async (req) =>
      admin.setTokenScopeMap(actor(req), param(req, 'name'), str(body(req).scopeMap) ?? ''),
    ),
  );
  r.delete(
    `${BASE}/tokens/:name`,
    h(204, async (req) => {
      await admin.deleteToken(actor(req), param(req, 'name'));
    }),
  );
  r.post(
    `${BASE}/tokens/:name/passwords/:slot`,
    h(200, async (req) =>
      admin.generateTokenPassword(
        actor(req),
        param(req, 'name'),
        param(req, 'slot') as PasswordSlot['name'],
        str(body(req).expiresAt),
      ),
    ),
  );
  r.delete(
    `${BASE}/tokens/:name/passwords/:slot`,
    h(200, async (req) =>
      admin.deleteTokenPassword(
        actor(req),
        param(req, 'name'),
        param(req, 'slot') as PasswordSlot['name'],
      ),
    ),
  );

  r.get(
    `${BASE}/audit`,
    h(200, async (req) => {
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
    }),
  );
  return r;
}
