import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request } from 'express';
import { OciError } from '@meridian/oci';
import type { RequestInfo } from '../domain/events';
import { jsonObjectBody } from './admin-json';
import type { AppRoute } from '../http/route-table';

/** What the import admin API needs (implemented by @meridian/cache's ImportJobs). */
export interface ImportAdmin {
  /** Checks the body, queues the import, returns its job (with its id) at once. */
  start(body: Record<string, unknown>, request: RequestInfo): Promise<unknown>;
  get(id: string): Promise<unknown>;
  list(): Promise<unknown>;
}

const BASE = '/meridian/v1/admin/import';

/**
 * `POST /meridian/v1/admin/import` (→ `202` and the job), `GET /meridian/v1/admin/import` (recent
 * imports) and `GET /meridian/v1/admin/import/:id` (status and progress), each needing `Owner`.
 * Imports run on the primary; elsewhere the API says so.
 */
export function importRoutes(
  imports: ImportAdmin | undefined,
  requestInfo: (req: IncomingMessage, res: ServerResponse) => RequestInfo,
): AppRoute[] {
  const svc = (): ImportAdmin => {
    if (!imports)
      throw new OciError(
        'UNSUPPORTED',
        'imports run on the primary region: send this request to a primary node or the gateway',
        undefined,
        405,
      );
    return imports;
  };
  const body = (req: Request) => jsonObjectBody(req);
  return [
    {
      method: 'POST',
      path: BASE,
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const job = await svc().start(body(req), requestInfo(req, res));
        res.status(202).json(job);
      },
    },
    {
      method: 'GET',
      path: BASE,
      need: { kind: 'admin' },
      handle: async (_req, res) => {
        res.json(await svc().list());
      },
    },
    {
      method: 'GET',
      path: `${BASE}/:id`,
      need: { kind: 'admin' },
      handle: async (_req, res, p) => {
        res.json(await svc().get(p.id!));
      },
    },
  ];
}
