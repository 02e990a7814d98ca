import type { Request } from 'express';
import { OciError } from '@meridian/oci';
import type { AppRoute, Method } from '../http/route-table';

/** What the credential-set admin API needs (implemented by @meridian/cache's CredentialSets). */
export interface CredentialSetAdmin {
  list(): Promise<unknown>;
  show(name: string): Promise<unknown>;
  create(input: Record<string, unknown>): Promise<unknown>;
  update(name: string, input: Record<string, unknown>): Promise<unknown>;
  delete(name: string): Promise<void>;
}

const BASE = '/meridian/v1/admin/credential-sets';

/**
 * `/meridian/v1/admin/credential-sets[/:name]` — JSON, each needing `Owner`. A set's username
 * and password go in (create, update) and never come out.
 */
export function credentialSetRoutes(service: CredentialSetAdmin | undefined): AppRoute[] {
  const body = (req: Request): Record<string, unknown> => {
    const b: unknown = req.body;
    if (typeof b !== 'object' || b === null || Array.isArray(b))
      throw new OciError('UNSUPPORTED', 'the request body must be a JSON object', undefined, 400);
    return b as Record<string, unknown>;
  };
  const route = (
    method: Method,
    path: string,
    status: number,
    fn: (s: CredentialSetAdmin, req: Request, p: Record<string, string>) => Promise<unknown>,
  ): AppRoute => ({
    method,
    path: `${BASE}${path}`,
    need: { kind: 'admin' },
    body: method === 'POST' || method === 'PATCH' ? 'json' : undefined,
    handle: async (req, res, params) => {
      if (!service)
        throw new OciError(
          'NAME_UNKNOWN',
          'credential sets need upstream.credentialKey (MERIDIAN_UPSTREAM_CREDENTIAL_KEY) on this node',
          undefined,
          404,
        );
      const out = await fn(service, req, params);
      if (out === undefined) res.status(204).end();
      else res.status(status).json(out);
    },
  });
  return [
    route('GET', '', 200, (s) => s.list()),
    route('POST', '', 201, (s, req) => s.create(body(req))),
    route('GET', '/:name', 200, (s, _req, p) => s.show(p.name!)),
    route('PATCH', '/:name', 200, (s, req, p) => s.update(p.name!, body(req))),
    route('DELETE', '/:name', 204, (s, _req, p) => s.delete(p.name!)),
  ];
}
