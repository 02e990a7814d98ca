import { parseDigest } from '@meridian/oci';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { meridian } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { artifact, image, imageIndex, type Image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

const ACCEPT = {
  Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
};

/** `meridian purge` on a three-region cluster: the primary decides, every region follows. */
describe('meridian purge across regions', () => {
  let c: TestCluster;
  let stores: Map<string, ObjectStore>;
  beforeAll(async () => {
    c = await startCluster();
    await c.startWorkers();
    stores = new Map(
      await Promise.all(c.regions.map(async (r) => [r.name, await openStore(r.storage)] as const)),
    );
  });
  afterAll(async () => {
    for (const s of stores?.values() ?? []) await s.close();
    await c?.close();
  });

  it('purges a multi-platform index with its signature whole in every region, dry run first; GC then frees the bytes', async () => {
    const client = new RegistryClient(c.primary.url);
    const plats: Image[] = [image(), image()];
    for (const p of plats)
      await client.pushImage('team/multi', p.manifest.digest, p.blobs, p.manifest);
    const index = imageIndex({ manifests: plats.map((p) => p.manifest) });
    await client.pushImage('team/multi', 'old', [], index);
    const sig = artifact({ subject: index, artifactType: 'application/vnd.dev.cosign.signature' });
    await client.pushImage('team/multi', sig.manifest.digest, sig.blobs, sig.manifest);
    const keep = image();
    await client.pushImage('team/multi', 'keep', keep.blobs, keep.manifest);
    await client.pushImage('team/multi', 'keep2', keep.blobs, keep.manifest);
    for (const r of c.replicas)
      await waitFor(async () => {
        const res = await new RegistryClient(r.url).get(`/v2/team/multi/referrers/${index.digest}`);
        return res.status === 200 && res.json<{ manifests: unknown[] }>().manifests.length === 1;
      }, `the signature in ${r.name}`);

    const args = ['purge', '--url', c.primary.url, '--filter', 'team/multi:old', '--untagged'];
    const dry = await meridian([...args, '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^dry run: would remove 1 tags and 4 manifests in 1 repositories/);
    expect(dry.stdout).toMatch(/team\/multi\s+1\/3\s+4 /);
    expect((await client.get('/v2/team/multi/manifests/old', { headers: ACCEPT })).status).toBe(
      200,
    );

    const run = await meridian(args);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^removed 1 tags and 4 manifests/);
    for (const r of c.regions) {
      const rc = new RegistryClient(r.url);
      await waitFor(async () => {
        const gone = await Promise.all(
          [index.digest, sig.manifest.digest, ...plats.map((p) => p.manifest.digest)].map(
            async (d) =>
              (await rc.get(`/v2/team/multi/manifests/${d}`, { headers: ACCEPT })).status,
          ),
        );
        return gone.every((s) => s === 404);
      }, `the index, its children and its signature gone from ${r.name}`);
      expect((await rc.get('/v2/team/multi/manifests/keep', { headers: ACCEPT })).status).toBe(200);
    }
    // GC frees their layers in every region.
    const layer = plats[0]!.layers[0]!.digest;
    for (const r of c.regions)
      await waitFor(async () => {
        const out = await meridian([
          'gc',
          '--url',
          c.primary.url,
          '--region',
          r.name,
          '--grace',
          '0',
        ]);
        if (out.code !== 0) throw new Error(out.stderr);
        return !(await new RepositoryLayout(stores.get(r.name)!).hasBlob(parseDigest(layer)));
      }, `the purged layers freed in ${r.name}`);
  });

  it('stops at a rail with exit code 3 and removes nothing there', async () => {
    const client = new RegistryClient(c.primary.url);
    const img = image();
    await client.pushImage('team/rail', 'only', img.blobs, img.manifest);
    const out = await meridian(['purge', '--url', c.primary.url, '--filter', 'team/rail:.*']);
    expect(out.code).toBe(3);
    expect(out.stdout).toMatch(/REFUSED: it would remove every tag of team\/rail/);
    expect((await client.get('/v2/team/rail/manifests/only', { headers: ACCEPT })).status).toBe(
      200,
    );
    const bad = await meridian([
      'purge',
      '--url',
      c.primary.url,
      '--filter',
      'x:.*',
      '--ago',
      '99999999d',
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/400 ago: 99999999d|over 100 years|not a duration/);
  });
});
