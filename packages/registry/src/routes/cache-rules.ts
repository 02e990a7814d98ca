import type { Request } from 'express';
import { OciError } from '@meridian/oci';
import type { AppRoute, Method } from '../http/route-table';

/** What the cache-rule admin API needs (implemented by @meridian/cache's CacheRules). */
export interface CacheRuleAdmin {
  list(): Promise<unknown>;
  show(name: string): Promise<unknown>;
  create(input: Record<string, unknown>): Promise<unknown>;
  update(name: string, input: Record<string, unknown>): Promise<unknown>;
  delete(name: string): Promise<void>;
}

const BASE = '/meridian/v1/admin/cache-rules';

/**
 * `/meridian/v1/admin/cache-rules[/:name]` — pull-through cache rules (ADR 0019), JSON, each
 * needing `Owner`. Rules live in the primary's store; every node serves the API.
 */
export function cacheRuleRoutes(service: CacheRuleAdmin | undefined): AppRoute[] {
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
    fn: (s: CacheRuleAdmin, req: Request, p: Record<string, string>) => Promise<unknown>,
  ): AppRoute => ({
    method,
    path: `${BASE}${path}`,
    need: { kind: 'admin' },
    body: method === 'POST' || method === 'PATCH' ? 'json' : undefined,
    handle: async (req, res, params) => {
      if (!service)
        throw new OciError(
          'NAME_UNKNOWN',
          'cache rules are not served by this node',
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
