import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDigest } from '@meridian/oci';
import { ReplicationQueues, reconcileHistory } from '@meridian/replication';
import { Layout, exists, openStore } from '@meridian/storage';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');

/** The finished reconcile runs of `region`, from BullMQ's job history, oldest first. */
async function finishedRuns(c: TestCluster, region: string) {
  const queues = new ReplicationQueues({
    redisUrl: c.redis.url,
    prefix: c.config.replication.prefix,
  });
  try {
    return await reconcileHistory(queues, region);
  } finally {
    await queues.close();
  }
}

describe('reconcile schedules (BullMQ job schedulers)', () => {
  let c: TestCluster;
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
    c = await startCluster({ regions: ['eastus', 'westeurope'], reconcileIntervalSeconds: 1 });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('the scheduled run repairs a blob deleted from a replica', async () => {
    const img = image({ layers: 1 });
    await new RegistryClient(c.primary.url).pushImage('drift/app', 'v1', img.blobs, img.manifest);
    await c.startWorkers();
    const region = c.replicas[0]!;
    const store = await openStore(region.storage);
    const layer = parseDigest(img.layers[0]!.digest);
    const keys = [Layout.blobData(layer), Layout.layerLink('drift/app', layer)];
    try {
      await waitFor(
        async () => (await Promise.all(keys.map((k) => exists(store, k)))).every(Boolean),
        'replicated',
      );
      const before = (await finishedRuns(c, region.name)).length;
      for (const k of keys) await store.delete(k);
      // Only a reconcile finds this drift: no change was committed on the primary.
      await waitFor(
        async () =>
          (await Promise.all(keys.map((k) => exists(store, k)))).every(Boolean) &&
          (await finishedRuns(c, region.name)).length > before,
        'the blob copied back by a scheduled reconcile',
      );
    } finally {
      await store.close();
      await c.stopWorkers();
    }
  });

  it('two worker processes never reconcile the same region at once', async () => {
    const a = c.spawnWorker();
    const b = c.spawnWorker();
    const region = c.replicas[0]!.name;
    const start = (await finishedRuns(c, region)).length;
    try {
      await waitFor(
        async () => (await finishedRuns(c, region)).length >= start + 6,
        'six more reconcile runs',
        60_000,
      );
    } finally {
      a.kill('SIGTERM');
      b.kill('SIGTERM');
    }
    const runs = await finishedRuns(c, region);
    for (let i = 1; i < runs.length; i++) {
      // each run starts after the one before it finished
      expect(runs[i]!.startedAt).toBeGreaterThanOrEqual(runs[i - 1]!.finishedAt);
    }
  });
});
