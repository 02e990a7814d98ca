import type { Request } from 'express';
import { isValidName, OciError } from '@meridian/oci';
import type { AppRoute } from '../http/route-table';

/** What the replication status API needs (implemented by @meridian/replication's ReplicationStatus). */
export interface ReplicationStatusProvider {
  objectStatus(repository: string, reference: string): Promise<unknown[]>;
  regionHealth(): Promise<unknown[]>;
  /** Per-region activity history from `since` (ms since the epoch), or the last hour. */
  history?(since?: number): Promise<unknown[]>;
  /** Recently finished sync jobs, newest first. */
  recent?(limit?: number): Promise<unknown[]>;
  /** Queues a reconcile run of the named replica regions (all when none are named). */
  requestReconcile?(regions?: string[]): Promise<unknown[]>;
  /** A queued reconcile run's state and, once finished, its report. */
  reconcileRun?(region: string, job: string): Promise<unknown>;
  /** Child processes `meridian dev` restarted, newest first (none outside dev). */
  processRestarts?(): Promise<unknown[]>;
}

const NOT_CONFIGURED = (): OciError =>
  new OciError('NAME_UNKNOWN', 'replication is not configured on this node', undefined, 404);

const query = (req: Request, k: string): string | undefined => {
  const v = req.query[k];
  return typeof v === 'string' ? v : undefined;
};

/**
 * `GET /meridian/v1/replication/status`, `/regions`, `/history` and `/recent` — JSON, on every
 * node (the dashboard reads them), for any signed-in identity (`/regions` adds `restarts`, the
 * child processes `meridian dev` restarted, when there are any); and
 * `POST /meridian/v1/admin/replication/reconcile` (`{"regions": [...]}` optional, `Owner`), which
 * queues a reconcile run per replica region for the workers.
 */
export function replicationRoutes(status: ReplicationStatusProvider | undefined): AppRoute[] {
  const get = (path: string, handle: AppRoute['handle']): AppRoute => ({
    method: 'GET',
    path: `/meridian/v1/replication/${path}`,
    need: { kind: 'identity' },
    handle,
  });
  return [
    get('status', async (req, res) => {
      const repository = query(req, 'repository') ?? '';
      const reference = query(req, 'reference') ?? '';
      if (!isValidName(repository) || reference.length === 0 || reference.length > 200)
        throw new OciError(
          'NAME_INVALID',
          'repository (a valid name) and reference (a tag or digest) are required',
        );
      if (!status) throw NOT_CONFIGURED();
      res.json({
        repository,
        reference,
        regions: await status.objectStatus(repository, reference),
      });
    }),
    get('regions', async (_req, res) => {
      if (!status) throw NOT_CONFIGURED();
      const [regions, restarts] = await Promise.all([
        status.regionHealth(),
        status.processRestarts?.().catch(() => []) ?? [],
      ]);
      res.json({ regions, ...(restarts.length > 0 && { restarts }) });
    }),
    get('history', async (req, res) => {
      const since = Number(query(req, 'since') ?? 0);
      if (!status?.history) throw NOT_CONFIGURED();
      res.json({
        bucketSeconds: 10,
        quantileWindowSeconds: 60,
        regions: await status.history(Number.isFinite(since) && since > 0 ? since : undefined),
      });
    }),
    {
      method: 'POST',
      path: '/meridian/v1/admin/replication/reconcile',
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const b: unknown = req.body ?? {};
        const regions =
          typeof b === 'object' && b !== null && !Array.isArray(b)
            ? (b as { regions?: unknown }).regions
            : null;
        if (
          regions !== undefined &&
          !(Array.isArray(regions) && regions.every((r) => typeof r === 'string'))
        )
          throw new OciError(
            'UNSUPPORTED',
            'the body is {"regions": ["name", ...]} (optional)',
            undefined,
            400,
          );
        if (!status?.requestReconcile) throw NOT_CONFIGURED();
        res.status(202).json({ queued: await status.requestReconcile(regions) });
      },
    },
    {
      method: 'GET',
      path: '/meridian/v1/admin/replication/reconcile/:region/:job',
      need: { kind: 'admin' },
      handle: async (_req, res, p) => {
        if (!status?.reconcileRun) throw NOT_CONFIGURED();
        res.json(await status.reconcileRun(p.region!, p.job!));
      },
    },
    get('recent', async (req, res) => {
      const limit = Math.min(200, Math.max(1, Number(query(req, 'limit') ?? 50) || 50));
      if (!status?.recent) throw NOT_CONFIGURED();
      res.json({ events: await status.recent(limit) });
    }),
  ];
}
