import type { IncomingMessage, ServerResponse } from 'node:http';
import { OciError } from '@meridian/oci';
import { jsonObjectBody } from './admin-json';
import type { AppRoute } from '../http/route-table';

/** What the purge admin API needs (implemented with @meridian/lifecycle's `runPurge`). */
export interface PurgeAdmin {
  /** Validates and runs a purge; rejects with an `OciError` (400) for a bad request. */
  run(req: Record<string, unknown>): Promise<unknown>;
}

/**
 * `POST /meridian/v1/admin/purge` (Owner): removes the tags (and, with `untagged`, the
 * manifests) a filter names, with rails; answers the exact diff. Body: `{"filters":
 * ["REPO_REGEX:TAG_REGEX"], "ago": "30d", "keep": N, "untagged": bool, "dryRun": bool,
 * "force": bool, "maxShare": 0.5, "includeLocked": bool}`.
 */
export function purgeRoutes(
  purge: PurgeAdmin | undefined,
  /** Runs the purge on behalf of the caller: its removals' events carry the Owner as actor. */
  onBehalf: <T>(req: IncomingMessage, res: ServerResponse, fn: () => Promise<T>) => Promise<T> = (
    _req,
    _res,
    fn,
  ) => fn(),
): AppRoute[] {
  return [
    {
      method: 'POST',
      path: '/meridian/v1/admin/purge',
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const b = jsonObjectBody(req, true);
        if (!purge)
          throw new OciError('UNSUPPORTED', 'purge runs on the primary region', undefined, 405);
        res.json(await onBehalf(req, res, () => purge.run(b)));
      },
    },
  ];
}
