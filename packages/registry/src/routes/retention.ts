import type { IncomingMessage, ServerResponse } from 'node:http';
import { OciError } from '@meridian/oci';
import type { Request } from 'express';
import type { AppRoute } from '../http/route-table';
import { jsonObjectBody } from './admin-json';

/** What the retention admin API needs (implemented with @meridian/lifecycle's `RetentionService`). */
export interface RetentionAdmin {
  status(): Promise<unknown>;
  /** Runs retention now; rejects with `OciError` 404 for an unknown rule. */
  run(req: { rule?: string; dryRun?: boolean; force?: boolean }, by: string): Promise<unknown>;
  approve(rule: string, by: string): Promise<unknown>;
}

const bad = (why: string): OciError => new OciError('UNSUPPORTED', why, undefined, 400);
const RULE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const bodyOf = (req: Request) => jsonObjectBody(req, true);

/**
 * Retention (ADR 0021), Owner only, on the primary: `GET /meridian/v1/admin/retention` (the
 * untagged policy, each rule and its state), `POST …/retention/run` (`{"rule"?, "dryRun"?,
 * "force"?}`: the exact diff; a rule's first run only plans unless `force`), `POST
 * …/retention/approve` (`{"rule"}`). A replica answers 405.
 */
export function retentionRoutes(
  retention: RetentionAdmin | undefined,
  onBehalf: <T>(req: IncomingMessage, res: ServerResponse, fn: () => Promise<T>) => Promise<T>,
  actorOf: (req: IncomingMessage, res: ServerResponse) => string,
): AppRoute[] {
  const need = (): RetentionAdmin => {
    if (!retention)
      throw new OciError('UNSUPPORTED', 'retention runs on the primary region', undefined, 405);
    return retention;
  };
  return [
    {
      method: 'GET',
      path: '/meridian/v1/admin/retention',
      need: { kind: 'admin' },
      handle: async (_req, res) => {
        res.json(await need().status());
      },
    },
    {
      method: 'POST',
      path: '/meridian/v1/admin/retention/run',
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const { rule, dryRun, force, ...rest } = bodyOf(req);
        const unknown = Object.keys(rest)[0];
        if (unknown !== undefined) throw bad(`unknown field ${unknown.slice(0, 40)}`);
        if (rule !== undefined && (typeof rule !== 'string' || !RULE.test(rule)))
          throw bad('rule: a rule name');
        for (const [k, v] of Object.entries({ dryRun, force }))
          if (v !== undefined && typeof v !== 'boolean') throw bad(`${k}: true or false`);
        const r = need();
        res.json(
          await onBehalf(req, res, () =>
            r.run(
              {
                ...(rule !== undefined && { rule: rule }),
                dryRun: dryRun === true,
                force: force === true,
              },
              actorOf(req, res),
            ),
          ),
        );
      },
    },
    {
      method: 'POST',
      path: '/meridian/v1/admin/retention/approve',
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const { rule } = bodyOf(req);
        if (typeof rule !== 'string' || !RULE.test(rule)) throw bad('rule: a rule name');
        res.json(await need().approve(rule, actorOf(req, res)));
      },
    },
  ];
}
