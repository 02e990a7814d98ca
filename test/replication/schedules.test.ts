import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDigest } from '@meridian/oci';
import { ReplicationQueues, reconcileHistory, reconcilePending } from '@meridian/replication';
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

/** Whether no reconcile of `region` is waiting or running, and one has finished. */
async function reconcileIdle(c: TestCluster, region: string): Promise<boolean> {
  const queues = new ReplicationQueues({
    redisUrl: c.redis.url,
    prefix: c.config.replication.prefix,
  });
  try {
    return (
      (await reconcilePending(queues, region)) === 0 &&
      (await reconcileHistory(queues, region)).length > 0
    );
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

describe('a worker that starts reconciles its regions at once', () => {
  let c: TestCluster;
  beforeAll(async () => {
    // An hour between scheduled runs: only the start of a worker can repair the drift below.
    c = await startCluster({ regions: ['eastus', 'westeurope'], reconcileIntervalSeconds: 3600 });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('drift made while the workers were down is repaired when they start again', async () => {
    const img = image({ layers: 1 });
    await new RegistryClient(c.primary.url).pushImage('restart/app', 'v1', img.blobs, img.manifest);
    const region = c.replicas[0]!;
    const store = await openStore(region.storage);
    const layer = parseDigest(img.layers[0]!.digest);
    const keys = [Layout.blobData(layer), Layout.layerLink('restart/app', layer)];
    const present = async () =>
      (await Promise.all(keys.map((k) => exists(store, k)))).every(Boolean);
    try {
      await c.startWorkers();
      await waitFor(present, 'replicated');
      // Every reconcile the first start queued has run: none is left to repair what follows.
      await waitFor(() => reconcileIdle(c, region.name), 'no reconcile waiting');
      await c.stopWorkers();
      for (const k of keys) await store.delete(k);
      const starts = async () =>
        (await finishedRuns(c, region.name)).filter((r) => r.reason === 'start').length;
      const before = await starts();
      await c.startWorkers();
      // The start itself queues a run (the next scheduled one is an hour away)…
      await waitFor(async () => (await starts()) > before, 'a reconcile run queued by the start');
      // …whose sync jobs put the blob back in the region.
      await waitFor(present, 'the blob copied back after the start run');
    } finally {
      await store.close();
      await c.stopWorkers();
    }
  });
});
