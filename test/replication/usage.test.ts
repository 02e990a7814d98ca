/**
 * Usage, per region (issue 13): each region counts the pulls it serves in its own storage, off
 * the request path; the primary's `/meridian/v1/usage` aggregates every region's.
 */
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

interface Summary {
  lastPulledAt?: number;
  count: number;
  regions: Record<string, { lastPulledAt: number; count: number }>;
}

describe('last pull, per region', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('counts pulls in the region that served them, and the primary sums them up', async () => {
    const img = image();
    const primary = new RegistryClient(c.primary.url);
    const replica = new RegistryClient(c.replicas[0]!.url);
    await primary.pushImage('use/app', 'v1', img.blobs, img.manifest);
    const other = image();
    await primary.pushImage('use/app', 'never', other.blobs, other.manifest);
    await c.startWorkers();
    await waitFor(
      async () =>
        (await replica.get('/v2/use/app/tags/list')).json<{ tags: string[] }>().tags.length === 2,
      'the tags in westeurope',
    );
    const before = Date.now();
    expect((await replica.get('/v2/use/app/manifests/v1')).status).toBe(200);
    expect((await replica.get('/v2/use/app/manifests/v1')).status).toBe(200);
    expect((await primary.get(`/v2/use/app/manifests/${img.manifest.digest}`)).status).toBe(200);
    // A HEAD is a check, not a pull.
    expect((await replica.head('/v2/use/app/manifests/v1')).status).toBe(200);
    // Counts are written every usage.flushIntervalSeconds, and when a node stops.
    await c.stopNode('westeurope');
    await c.stopNode('eastus');
    await c.startNode('eastus');
    await c.startNode('westeurope');

    const usage = (await primary.get('/meridian/v1/usage?repository=use/app')).json<{
      tags: Record<string, Summary>;
      manifests: Record<string, Summary>;
      unreadable: string[];
    }>();
    expect(usage.unreadable).toEqual([]);
    expect(usage.tags.v1).toMatchObject({
      count: 2,
      regions: { westeurope: { count: 2 } },
    });
    expect(usage.tags.v1!.regions.eastus).toBeUndefined();
    expect(usage.tags.v1!.lastPulledAt).toBeGreaterThanOrEqual(before);
    expect(usage.manifests[img.manifest.digest]).toMatchObject({
      count: 3,
      regions: { eastus: { count: 1 }, westeurope: { count: 2 } },
    });
    expect(usage.tags.never).toBeUndefined();
    // The replica answers the same from its own view of every region.
    const there = (await replica.get('/meridian/v1/usage?repository=use/app')).json<{
      tags: Record<string, Summary>;
    }>();
    expect(there.tags.v1?.count).toBe(2);
  });

  it('counts a pull the replica served from the primary once, in the replica’s region', async () => {
    await c.stopWorkers(); // nothing reaches westeurope: its pulls fall back to the primary
    const img = image();
    const primary = new RegistryClient(c.primary.url);
    const replica = new RegistryClient(c.replicas[0]!.url);
    await primary.pushImage('use/miss', 'v1', img.blobs, img.manifest);
    const r = await replica.get('/v2/use/miss/manifests/v1');
    expect(r.status).toBe(200);
    expect(r.header('docker-content-digest')).toBe(img.manifest.digest);
    await c.stopNode('westeurope');
    await c.stopNode('eastus');
    await c.startNode('eastus');
    await c.startNode('westeurope');
    const usage = (await primary.get('/meridian/v1/usage?repository=use/miss')).json<{
      tags: Record<string, Summary>;
      manifests: Record<string, Summary>;
    }>();
    expect(usage.tags.v1).toMatchObject({ count: 1, regions: { westeurope: { count: 1 } } });
    expect(usage.tags.v1!.regions.eastus).toBeUndefined();
    expect(usage.manifests[img.manifest.digest]).toMatchObject({
      count: 1,
      regions: { westeurope: { count: 1 } },
    });
  });
});
