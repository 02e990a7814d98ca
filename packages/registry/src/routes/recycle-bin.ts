import type { Request } from 'express';
import { isDigestLike, isValidName, isValidTag, OciError } from '@meridian/oci';
import type { Registry } from '../domain/registry';
import { jsonObjectBody } from './admin-json';
import type { AppRoute } from '../http/route-table';

const bad = (why: string): OciError => new OciError('UNSUPPORTED', why, undefined, 400);

const body = (req: Request) => jsonObjectBody(req, true);

function repositoryOf(v: unknown): string {
  if (typeof v !== 'string' || !isValidName(v)) throw bad('repository: a repository name');
  return v;
}

function digestOf(v: unknown): string {
  if (typeof v !== 'string' || !isDigestLike(v)) throw bad('digest: a manifest digest');
  return v;
}

/**
 * The recycle bin of soft delete (ADR 0017), `Owner` only: `GET /meridian/v1/admin/deleted?
 * repository=R` lists it; `POST …/deleted/restore` `{repository, digest, tags?}` brings a
 * manifest back (with its tags, an index's children and its referrers); `POST …/deleted/purge`
 * `{repository?, digest?}` erases for good (no repository: every expired one). Restores and
 * purges are writes: on a replica they are refused with the primary's name.
 */
export function recycleBinRoutes(registry: Registry): AppRoute[] {
  const primaryOnly = (): void => {
    if (registry.opts.replica)
      throw new OciError(
        'UNSUPPORTED',
        `the recycle bin is changed on the primary region (${registry.opts.replica.primary.baseUrl})`,
        undefined,
        405,
      );
  };
  return [
    {
      method: 'GET',
      path: '/meridian/v1/admin/deleted',
      need: { kind: 'admin' },
      handle: async (req, res) => {
        const repository = repositoryOf(req.query.repository);
        res.json({ repository, manifests: await registry.recycleBin.list(repository) });
      },
    },
    {
      method: 'POST',
      path: '/meridian/v1/admin/deleted/restore',
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const b = body(req);
        const repository = repositoryOf(b.repository);
        const digest = digestOf(b.digest);
        const tags = b.tags;
        if (
          tags !== undefined &&
          !(
            Array.isArray(tags) &&
            tags.length <= 100 &&
            tags.every((t) => typeof t === 'string' && isValidTag(t))
          )
        )
          throw bad('tags: a list of tags');
        primaryOnly();
        res.json(
          await registry.recycleBin.restore(repository, digest, tags as string[] | undefined),
        );
      },
    },
    {
      method: 'POST',
      path: '/meridian/v1/admin/deleted/purge',
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const b = body(req);
        const repository = b.repository === undefined ? undefined : repositoryOf(b.repository);
        const digest = b.digest === undefined ? undefined : digestOf(b.digest);
        if (digest !== undefined && repository === undefined) throw bad('digest needs repository');
        primaryOnly();
        res.json({ purged: await registry.recycleBin.purge({ repository, digest }) });
      },
    },
  ];
}
