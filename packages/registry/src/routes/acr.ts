import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { isDigestLike, isValidTag, OciError } from '@meridian/oci';
import type { RequestInfo } from '../domain/events';
import type { Registry } from '../domain/registry';
import { deleteRepository } from '../domain/repository-delete';
import {
  MAX_PAGE,
  type Page,
  type PageRequest,
  type RepositoryMetadata,
} from '../domain/repository-metadata';
import type { Need } from '../http/auth-gate';
import type { AppRoute } from '../http/route-table';
import type { ReplicationStatusProvider } from './replication';

/** The response header that carries the number of items of the whole listing. */
export const TOTAL_COUNT_HEADER = 'X-Total-Count';

const bad = (why: string): OciError => new OciError('UNSUPPORTED', why, undefined, 400);

const READ: Need = {
  kind: 'repository',
  name: ':repository',
  actions: ['pull', 'metadata_read'],
  challenge: 'metadata_read',
};
const WRITE: Need = {
  kind: 'repository',
  name: ':repository',
  actions: ['metadata_write'],
  challenge: 'metadata_write',
};
const DELETE: Need = {
  kind: 'repository',
  name: ':repository',
  actions: ['delete'],
  challenge: 'delete',
};

const FLAGS = ['deleteEnabled', 'writeEnabled', 'readEnabled', 'listEnabled'] as const;

export interface AcrDeps {
  registry: Registry;
  metadata: RepositoryMetadata;
  /** Per-region state of a tag or manifest (single-item `GET`s), when in a cluster. */
  replication?: ReplicationStatusProvider;
  requestInfo: (req: IncomingMessage, res: ServerResponse) => RequestInfo;
}

/**
 * ACR's data plane (`/acr/v1`, ADR 0020): what `az acr repository|manifest …` and the Azure
 * SDKs speak, with ACR's JSON shapes, paging (`n`, `last`, `orderby`, `Link`) and error bodies.
 * Reads need `pull` or `metadata_read` on the repository, lock changes `metadata_write`,
 * deletes `delete`; the name the gate checks is the name the handler reads.
 */
export function acrRoutes(deps: AcrDeps): AppRoute[] {
  const { registry, metadata } = deps;
  const base = '/acr/v1/:repository+';
  const primaryOnly = (): void => {
    const replica = registry.opts.replica;
    if (replica)
      throw new OciError(
        'UNSUPPORTED',
        `region ${replica.region} is a read-only replica; send this to the primary at ${replica.primary.baseUrl}`,
        { primary: replica.primary.baseUrl },
        405,
      );
  };
  const asActor = <T>(req: Request, res: Response, fn: () => Promise<T>): Promise<T> =>
    registry.events.withRequest(deps.requestInfo(req, res), fn);
  const head = (req: Request, repository: string) => ({
    registry: loginServer(req),
    imageName: repository,
  });
  const regions = async (repository: string, reference: string) =>
    deps.replication
      ? { replication: await deps.replication.objectStatus(repository, reference) }
      : {};

  return [
    {
      method: 'GET',
      path: '/acr/v1/_catalog',
      need: { kind: 'catalog' },
      handle: async (req, res) => {
        const page = pageOf(req, false);
        const [{ repositories, more }, all] = await Promise.all([
          registry.catalog.list(page.n ?? MAX_PAGE, page.last),
          registry.catalog.all(),
        ]);
        sendPage(res, '/acr/v1/_catalog', page, all.length, more ? repositories.at(-1) : undefined);
        res.json({ repositories });
      },
    },
    {
      method: 'GET',
      path: base,
      need: READ,
      handle: async (req, res, p) => {
        const repo = p.repository!;
        res.json({ registry: loginServer(req), ...(await metadata.repository(repo)) });
      },
    },
    {
      method: 'PATCH',
      path: base,
      need: WRITE,
      body: 'json',
      handle: async (req, res, p) => {
        const repo = p.repository!;
        const patch = flagsPatch(req);
        await asActor(req, res, () =>
          registry.lockAdmin.change(repo, { scope: 'repository' }, patch),
        );
        res.json({ registry: loginServer(req), ...(await metadata.repository(repo)) });
      },
    },
    {
      method: 'DELETE',
      path: base,
      need: DELETE,
      handle: async (req, res, p) => {
        primaryOnly();
        const repo = p.repository!;
        const deleted = await asActor(req, res, () => deleteRepository(registry, repo));
        res.status(202).json(deleted);
      },
    },
    {
      method: 'GET',
      path: `${base}/_tags`,
      need: READ,
      handle: async (req, res, p) => {
        const repo = p.repository!;
        const page = pageOf(req, true);
        const tags = await metadata.tags(repo, page);
        sendPage(res, `/acr/v1/${repo}/_tags`, page, tags.total, tags.next);
        res.json({ ...head(req, repo), tags: tags.items });
      },
    },
    {
      method: 'GET',
      path: `${base}/_tags/:tag`,
      need: READ,
      handle: async (req, res, p) => {
        const repo = p.repository!;
        const tag = tagOf(p.tag);
        const t = await metadata.tag(repo, tag);
        res.json({ ...head(req, repo), tag: { ...t, ...(await regions(repo, tag)) } });
      },
    },
    {
      method: 'PATCH',
      path: `${base}/_tags/:tag`,
      need: WRITE,
      body: 'json',
      handle: async (req, res, p) => {
        const repo = p.repository!;
        const tag = tagOf(p.tag);
        const patch = flagsPatch(req);
        await asActor(req, res, () =>
          registry.lockAdmin.change(repo, { scope: 'tag', tag }, patch),
        );
        res.json({ ...head(req, repo), tag: await metadata.tag(repo, tag) });
      },
    },
    {
      method: 'DELETE',
      path: `${base}/_tags/:tag`,
      need: DELETE,
      handle: async (req, res, p) => {
        primaryOnly();
        const repo = p.repository!;
        const tag = tagOf(p.tag);
        await asActor(req, res, () => registry.manifests.delete(repo, tag));
        res.status(202).end();
      },
    },
    {
      method: 'GET',
      path: `${base}/_manifests`,
      need: READ,
      handle: async (req, res, p) => {
        const repo = p.repository!;
        const page = pageOf(req, true);
        const manifests = await metadata.manifests(repo, page);
        sendPage(res, `/acr/v1/${repo}/_manifests`, page, manifests.total, manifests.next);
        res.json({ ...head(req, repo), manifests: manifests.items });
      },
    },
    {
      method: 'GET',
      path: `${base}/_manifests/:reference`,
      need: READ,
      handle: async (req, res, p) => {
        const repo = p.repository!;
        const digest = await digestOf(metadata, repo, p.reference);
        const m = await metadata.manifest(repo, digest);
        res.json({ ...head(req, repo), manifest: { ...m, ...(await regions(repo, digest)) } });
      },
    },
    {
      method: 'PATCH',
      path: `${base}/_manifests/:reference`,
      need: WRITE,
      body: 'json',
      handle: async (req, res, p) => {
        const repo = p.repository!;
        const digest = await digestOf(metadata, repo, p.reference);
        const patch = flagsPatch(req);
        await asActor(req, res, () =>
          registry.lockAdmin.change(repo, { scope: 'manifest', digest }, patch),
        );
        res.json({ ...head(req, repo), manifest: await metadata.manifest(repo, digest) });
      },
    },
    {
      method: 'DELETE',
      path: `${base}/_manifests/:reference`,
      need: DELETE,
      handle: async (req, res, p) => {
        primaryOnly();
        const repo = p.repository!;
        const reference = p.reference!;
        if (!isDigestLike(reference)) throw bad('a manifest is deleted by digest');
        await asActor(req, res, () => registry.manifests.delete(repo, reference));
        res.status(202).end();
      },
    },
  ];
}

/** The registry's login server as the client named it (ACR's `registry` field). */
function loginServer(req: Request): string {
  return (req.headers.host ?? 'localhost').replace(/[^\w.:[\]-]/g, '');
}

function tagOf(v: string | undefined): string {
  if (v === undefined || !isValidTag(v))
    throw new OciError('MANIFEST_UNKNOWN', `invalid tag: ${String(v).slice(0, 140)}`);
  return v;
}

/** A manifest is named by digest, or (as ACR allows) by a tag. */
async function digestOf(
  metadata: RepositoryMetadata,
  repository: string,
  reference: string | undefined,
): Promise<string> {
  if (reference !== undefined && isDigestLike(reference)) return reference;
  return metadata.digestOf(repository, tagOf(reference));
}

/** The lock flags of an ACR `PATCH` body: `{"deleteEnabled": false, …}`, nothing else. */
function flagsPatch(req: Request): Partial<Record<(typeof FLAGS)[number], boolean>> {
  const b: unknown = req.body ?? {};
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw bad('the body is a JSON object of deleteEnabled, writeEnabled, readEnabled, listEnabled');
  const out: Partial<Record<(typeof FLAGS)[number], boolean>> = {};
  for (const [k, v] of Object.entries(b as Record<string, unknown>)) {
    if (!(FLAGS as readonly string[]).includes(k) || typeof v !== 'boolean')
      throw bad(`${k.slice(0, 64)}: the body takes ${FLAGS.join(', ')} as true or false`);
    out[k as (typeof FLAGS)[number]] = v;
  }
  if (Object.keys(out).length === 0) throw bad(`nothing to change: set one of ${FLAGS.join(', ')}`);
  return out;
}

/** `n`, `last` and (where `timed`) `orderby` from the query, checked. */
function pageOf(req: Request, timed: boolean): PageRequest {
  const q = req.query as Record<string, unknown>;
  const one = (k: string): string | undefined => {
    const v = q[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw bad(`${k} given more than once`);
    return v;
  };
  const page: PageRequest = {};
  const n = one('n');
  if (n !== undefined && n !== '') {
    if (!/^\d{1,6}$/.test(n) || Number(n) < 1) throw bad('n: a positive number');
    page.n = Math.min(Number(n), MAX_PAGE);
  }
  const last = one('last');
  if (last !== undefined && last !== '') page.last = last.slice(0, 1024);
  const orderby = one('orderby');
  if (orderby !== undefined && orderby !== '') {
    if (!timed || (orderby !== 'timedesc' && orderby !== 'timeasc'))
      throw bad('orderby: timedesc or timeasc');
    page.orderby = orderby;
  }
  return page;
}

/** ACR's `Link: <…?last=…&n=…&orderby=…>; rel="next"` and the total count. */
function sendPage(
  res: Response,
  path: string,
  page: PageRequest,
  total: number,
  next: string | undefined,
): void {
  res.setHeader(TOTAL_COUNT_HEADER, String(total));
  if (next === undefined) return;
  const n = page.n ?? MAX_PAGE;
  const query = `last=${encodeURIComponent(next)}&n=${n}&orderby=${page.orderby ?? ''}`;
  res.setHeader('Link', `<${path}?${query}>; rel="next"`);
}

export type { Page };
