import { isValidName, OciError } from '@meridian/oci';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestInfo } from '../domain/events';
import { lockTargetOf } from '../domain/lock-store';
import type { Registry } from '../domain/registry';
import type { AppRoute } from '../http/route-table';

const badRequest = (why: string): OciError =>
  new OciError(
    'UNSUPPORTED',
    `${why}; the body is {"repository": "name", "tag"?: "t" | "digest"?: "sha256:…", "deleteEnabled"?, "writeEnabled"?, "readEnabled"?, "listEnabled"?: true|false, "writeOnce"?: ["glob" | "regex:re", …]}`,
    undefined,
    400,
  );

function repositoryOf(v: unknown): string {
  if (typeof v !== 'string' || !isValidName(v))
    throw badRequest('repository is not a repository name');
  return v;
}

/**
 * Locks (ADR 0015), `Owner` only: `GET /meridian/v1/admin/locks?repository=R[&tag=T|&digest=D]`
 * shows a lock and its effective result (for a repository: every tag's effective lock); `PUT
 * /meridian/v1/admin/locks` changes one, on the primary only (a replica answers with the
 * primary's address). Through the gateway a `GET` is answered by the nearest region — its own
 * copy of the locks — and a `PUT` goes to the primary.
 */
export function lockRoutes(
  registry: Registry,
  /** Who asks: the `lockChanged` event (audit, webhooks) carries this actor. */
  requestInfo: (req: IncomingMessage, res: ServerResponse) => RequestInfo,
): AppRoute[] {
  return [
    {
      method: 'GET',
      path: '/meridian/v1/admin/locks',
      need: { kind: 'admin' },
      handle: async (req, res) => {
        const q = req.query as Record<string, unknown>;
        const repository = repositoryOf(q.repository);
        const target = lockTargetOf({ tag: q.tag, digest: q.digest });
        res.json(await registry.lockAdmin.describe(repository, target));
      },
    },
    {
      method: 'PUT',
      path: '/meridian/v1/admin/locks',
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const b: unknown = req.body ?? {};
        if (typeof b !== 'object' || b === null || Array.isArray(b))
          throw badRequest('not an object');
        const { repository, tag, digest, ...patch } = b as Record<string, unknown>;
        const target = lockTargetOf({ tag, digest });
        const view = await registry.events.withRequest(requestInfo(req, res), () =>
          registry.lockAdmin.change(repositoryOf(repository), target, patch),
        );
        res.json(view);
      },
    },
  ];
}
