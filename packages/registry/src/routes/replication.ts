import { Router } from 'express';
import { isValidName } from '@meridian/oci';

/** What the replication status API needs (implemented by @meridian/replication's ReplicationStatus). */
export interface ReplicationStatusProvider {
  objectStatus(repository: string, reference: string): Promise<unknown[]>;
  regionHealth(): Promise<unknown[]>;
  /** Per-region activity history from `since` (ms since the epoch), or the last hour. */
  history?(since?: number): Promise<unknown[]>;
  /** Recently finished sync jobs, newest first. */
  recent?(limit?: number): Promise<unknown[]>;
}

/**
 * `GET /meridian/v1/replication/status`, `/regions`, `/history` and `/recent` — JSON, on every
 * node (the dashboard reads them).
 */
export function replicationRouter(status: ReplicationStatusProvider | undefined): Router {
  const r = Router();
  r.get('/meridian/v1/replication/status', async (req, res) => {
    const repository = typeof req.query.repository === 'string' ? req.query.repository : '';
    const reference = typeof req.query.reference === 'string' ? req.query.reference : '';
    if (!isValidName(repository) || reference.length === 0 || reference.length > 200) {
      res
        .status(400)
        .json({ error: 'repository (a valid name) and reference (a tag or digest) are required' });
      return;
    }
    if (!status) {
      res.status(404).json({ error: 'replication is not configured on this node' });
      return;
    }
    res.json({ repository, reference, regions: await status.objectStatus(repository, reference) });
  });
  r.get('/meridian/v1/replication/regions', async (_req, res) => {
    if (!status) {
      res.status(404).json({ error: 'replication is not configured on this node' });
      return;
    }
    res.json({ regions: await status.regionHealth() });
  });
  r.get('/meridian/v1/replication/history', async (req, res) => {
    const since = Number(req.query.since ?? 0);
    if (!status?.history) {
      res.status(404).json({ error: 'replication is not configured on this node' });
      return;
    }
    res.json({
      bucketSeconds: 10,
      quantileWindowSeconds: 60,
      regions: await status.history(Number.isFinite(since) && since > 0 ? since : undefined),
    });
  });
  r.get('/meridian/v1/replication/recent', async (req, res) => {
    const limit = Math.min(200, Math.max(1, Number(req.query.limit ?? 50) || 50));
    if (!status?.recent) {
      res.status(404).json({ error: 'replication is not configured on this node' });
      return;
    }
    res.json({ events: await status.recent(limit) });
  });
  return r;
}
