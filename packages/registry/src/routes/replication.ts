import { Router } from 'express';
import { isValidName } from '@meridian/oci';

/** What the replication status API needs (implemented by @meridian/replication's ReplicationStatus). */
export interface ReplicationStatusProvider {
  objectStatus(repository: string, reference: string): Promise<unknown[]>;
  regionHealth(): Promise<unknown[]>;
}

/** `GET /meridian/v1/replication/status` and `/regions` — JSON, on every node. */
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
  return r;
}
