import type { Request } from 'express';
import { OciError } from '@meridian/oci';
import type { AppRoute, Method } from '../http/route-table';

/**
 * A JSON admin request's body as an object: 400 for anything else. With `emptyOk`, a request
 * without a body reads as `{}` (for actions such as `ping` that take none).
 */
export function jsonObjectBody(req: Request, emptyOk = false): Record<string, unknown> {
  const b: unknown = req.body;
  if (b === undefined && emptyOk) return {};
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw new OciError('UNSUPPORTED', 'the request body must be a JSON object', undefined, 400);
  return b as Record<string, unknown>;
}

export type AdminCall<S> = (s: S, req: Request, p: Record<string, string>) => Promise<unknown>;

/**
 * The Owner-only JSON routes of one admin service under `base`: each calls the service once and
 * answers `status` with its result as JSON, or `204` when it returns nothing. A node without the
 * service answers every route with `notConfigured()`.
 */
export function adminRouteFactory<S>(
  base: string,
  service: S | undefined,
  notConfigured: () => OciError,
): (method: Method, path: string, status: number, fn: AdminCall<S>) => AppRoute {
  return (method, path, status, fn) => ({
    method,
    path: `${base}${path}`,
    need: { kind: 'admin' },
    body: method === 'GET' || method === 'DELETE' ? undefined : 'json',
    handle: async (req, res, params) => {
      if (!service) throw notConfigured();
      const out = await fn(service, req, params);
      if (out === undefined) res.status(204).end();
      else res.status(status).json(out);
    },
  });
}

/** What a named-resource admin API offers: list, show, create, update, delete. */
export interface CrudAdmin {
  list(): Promise<unknown>;
  show(name: string): Promise<unknown>;
  create(input: Record<string, unknown>): Promise<unknown>;
  update(name: string, input: Record<string, unknown>): Promise<unknown>;
  delete(name: string): Promise<void>;
}

/** `GET|POST base`, `GET|PATCH|DELETE base/:name` over a `CrudAdmin`. */
export function crudAdminRoutes<S extends CrudAdmin>(
  route: (method: Method, path: string, status: number, fn: AdminCall<S>) => AppRoute,
  emptyBodyOk = false,
): AppRoute[] {
  return [
    route('GET', '', 200, (s) => s.list()),
    route('POST', '', 201, (s, req) => s.create(jsonObjectBody(req, emptyBodyOk))),
    route('GET', '/:name', 200, (s, _req, p) => s.show(p.name!)),
    route('PATCH', '/:name', 200, (s, req, p) =>
      s.update(p.name!, jsonObjectBody(req, emptyBodyOk)),
    ),
    route('DELETE', '/:name', 204, (s, _req, p) => s.delete(p.name!)),
  ];
}
