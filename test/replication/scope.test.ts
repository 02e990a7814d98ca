/**
 * Replication scope per region (issue 17, ADR 0026): westeurope replicates only `team-a/**`;
 * southeastasia everything. Outside its scope a region serves by fallback, copies nothing in,
 * shows the repository as out of scope (never missing, never lag); changing the scope converges
 * the region both ways.
 */
import { parseDigest } from '@meridian/oci';
import { Layout, exists, openStore, type ObjectStore } from '@meridian/storage';
import { runWorkers, type WorkerRun } from '../../packages/cli/src/worker';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image, type Image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const ACCEPT = {
  Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
};

interface RegionRow {
  region: string;
  pending: number | null;
  lagSeconds: number | null;
  queue: { waiting: number; active: number; delayed: number } | null;
}

describe('replication scope per region', () => {
  let c: TestCluster;
  let stores: Map<string, ObjectStore>;
  let workers: WorkerRun | undefined;
  const teamA: Image = image({ layers: 2 });
  const other: Image = image({ layers: 2 });

  const primary = () => new RegistryClient(c.primary.url);
  const region = (name: string) => c.regions.find((r) => r.name === name)!;
  const holds = (name: string, repo: string) =>
    exists(stores.get(name)!, Layout.tagCurrent(repo, 'v1'));
  const rows = async () =>
    (await primary().get('/meridian/v1/replication/regions')).json<{ regions: RegionRow[] }>()
      .regions;
  const drained = (what: string) =>
    waitFor(
      async () =>
        (await rows())
          .filter((r) => r.region !== 'eastus')
          .every(
            (r) =>
              !!r.queue &&
              r.queue.waiting + r.queue.active + r.queue.delayed === 0 &&
              r.pending === 0 &&
              r.lagSeconds === 0,
          ),
      what,
      60_000,
    );
  /** Workers over the cluster's config with westeurope's scope replaced. */
  const workersWithScope = async (scope: { repositories?: string[] } | undefined) => {
    await workers?.close();
    await c.stopWorkers();
    const regions = c.config.regions.map((r) => (r.name === 'westeurope' ? { ...r, scope } : r));
    workers = await runWorkers({ ...c.config, regions, region: 'eastus' }, []);
  };

  beforeAll(async () => {
    c = await startCluster({
      regions: ['eastus', 'westeurope', 'southeastasia'],
      scopes: { westeurope: { repositories: ['team-a/**'] } },
    });
    stores = new Map();
    for (const r of c.regions) stores.set(r.name, await openStore(r.storage));
    await primary().pushImage('team-a/app', 'v1', teamA.blobs, teamA.manifest);
    await primary().pushImage('other/app', 'v1', other.blobs, other.manifest);
    await c.startWorkers();
  });
  afterAll(async () => {
    await workers?.close();
    for (const s of stores?.values() ?? []) await s.close();
    await c?.close();
  });

  it('replicates only what is in scope, and is level (lag 0) without the rest', async () => {
    await waitFor(() => holds('southeastasia', 'other/app'), 'other/app in southeastasia');
    await waitFor(() => holds('westeurope', 'team-a/app'), 'team-a/app in westeurope');
    await drained('every region drained');
    expect(await holds('westeurope', 'other/app')).toBe(false);
    expect(
      await exists(stores.get('westeurope')!, Layout.blobData(parseDigest(other.blobs[0]!.digest))),
    ).toBe(false);
    // A push outside the scope while the region runs: still nothing queued for it, lag stays 0.
    const more = image();
    await primary().pushImage('other/app', 'v2', more.blobs, more.manifest);
    await waitFor(
      () => exists(stores.get('southeastasia')!, Layout.tagCurrent('other/app', 'v2')),
      'v2 in southeastasia',
    );
    await drained('drained after an out-of-scope push');
    expect(await exists(stores.get('westeurope')!, Layout.tagCurrent('other/app', 'v2'))).toBe(
      false,
    );
  });

  it('serves an out-of-scope image by fallback, byte for byte, without copying it in', async () => {
    const we = new RegistryClient(region('westeurope').url);
    const m = await we.get('/v2/other/app/manifests/v1', { headers: ACCEPT });
    expect(m.status).toBe(200);
    expect(m.header('docker-content-digest')).toBe(other.manifest.digest);
    for (const b of other.blobs) {
      const got = await we.get(`/v2/other/app/blobs/${b.digest}`);
      expect(got.status).toBe(200);
      expect(Buffer.compare(got.body, b.bytes)).toBe(0);
    }
    await drained('drained after the fallback reads');
    expect(await holds('westeurope', 'other/app')).toBe(false);
  });

  it('shows the repository as out of scope in westeurope, not missing', async () => {
    const scopes = Object.fromEntries(
      (await primary().get('/meridian/v1/replication/regions'))
        .json<{ regions: { region: string; scope: string[] | null }[] }>()
        .regions.map((r) => [r.region, r.scope]),
    );
    expect(scopes).toEqual({ eastus: null, westeurope: ['team-a/**'], southeastasia: null });
    const res = await primary().get(
      '/meridian/v1/replication/status?repository=other/app&reference=v1',
    );
    const states = Object.fromEntries(
      res
        .json<{ regions: { region: string; state: string }[] }>()
        .regions.map((r) => [r.region, r.state]),
    );
    expect(states).toEqual({
      eastus: 'replicated',
      westeurope: 'out-of-scope',
      southeastasia: 'replicated',
    });
  });

  it('converges when the scope grows, and removes what left it', async () => {
    await workersWithScope({ repositories: ['team-a/**', 'other/**'] });
    await waitFor(() => holds('westeurope', 'other/app'), 'other/app in westeurope once in scope');
    await drained('drained after the scope grew');

    await workersWithScope({ repositories: ['other/**'] });
    await waitFor(
      async () => !(await holds('westeurope', 'team-a/app')),
      'team-a/app removed from westeurope once out of scope',
    );
    expect(await holds('westeurope', 'other/app')).toBe(true);
    expect(await holds('southeastasia', 'team-a/app')).toBe(true);

    // The region's garbage collection then frees the bytes only the out-of-scope repository used.
    const blobIn = (name: string, digest: string) =>
      exists(stores.get(name)!, Layout.blobData(parseDigest(digest)));
    const layer = teamA.blobs[0]!.digest;
    expect(await blobIn('westeurope', layer)).toBe(true);
    const gc = await primary().post('/meridian/v1/admin/gc', {
      body: JSON.stringify({ region: 'westeurope', mode: 'full', graceSeconds: 0 }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(gc.status).toBe(200);
    expect(await blobIn('westeurope', layer)).toBe(false);
    for (const b of other.blobs) expect(await blobIn('westeurope', b.digest)).toBe(true);
    expect(await blobIn('eastus', layer)).toBe(true);
    expect(await blobIn('southeastasia', layer)).toBe(true);
  });

  it('refuses a malformed scope at startup', async () => {
    const bad = c.config.regions.map((r) =>
      r.name === 'westeurope' ? { ...r, scope: { repositories: [''] } } : r,
    );
    const { NodeConfigSchema } = await import('../../packages/cli/src/config');
    const parsed = NodeConfigSchema.safeParse({ ...c.config, regions: bad });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.message).join('; ')).toMatch(
      /scope pattern "" is empty/,
    );
  });
});
