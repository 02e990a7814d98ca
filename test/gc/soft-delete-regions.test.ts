import { createHash } from 'node:crypto';
import { parseDigest } from '@meridian/oci';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { meridian } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

const ACCEPT = { Accept: 'application/vnd.oci.image.manifest.v1+json' };

/** Soft delete with geo-replication: delete, gone everywhere; restore, back everywhere. */
describe('soft delete across regions', () => {
  let c: TestCluster;
  let stores: Map<string, ObjectStore>;
  beforeAll(async () => {
    c = await startCluster({ softDelete: { enabled: true, retentionDays: 3 } });
    await c.startWorkers();
    stores = new Map(
      await Promise.all(c.regions.map(async (r) => [r.name, await openStore(r.storage)] as const)),
    );
  });
  afterAll(async () => {
    for (const s of stores?.values() ?? []) await s.close();
    await c?.close();
  });

  const status = async (url: string, ref: string) =>
    (await new RegistryClient(url).get(`/v2/team/soft/manifests/${ref}`, { headers: ACCEPT }))
      .status;

  it('a deleted image vanishes from every region, comes back byte for byte, and a purge erases it everywhere', async () => {
    const img = image({ layers: 2, layerSize: 2048 });
    const client = new RegistryClient(c.primary.url);
    await client.pushImage('team/soft', 'v1', img.blobs, img.manifest);
    for (const r of c.replicas)
      await waitFor(async () => (await status(r.url, 'v1')) === 200, `v1 in ${r.name}`);

    expect((await client.delete(`/v2/team/soft/manifests/${img.manifest.digest}`)).status).toBe(
      202,
    );
    for (const r of c.regions) {
      await waitFor(
        async () => (await status(r.url, img.manifest.digest)) === 404,
        `gone from ${r.name}`,
      );
      expect(await status(r.url, 'v1')).toBe(404);
    }
    const list = await meridian(['manifest', 'list-deleted', 'team/soft', '--url', c.primary.url]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(img.manifest.digest);
    expect(list.stdout).toMatch(/\bv1\b/);
    // The tombstone replicates (a promoted replica could restore it too).
    for (const r of c.replicas)
      await waitFor(
        async () =>
          (await new RepositoryLayout(stores.get(r.name)!).listTombstones('team/soft')).length ===
          1,
        `the tombstone in ${r.name}`,
      );
    // A replica refuses to change the bin and names the primary.
    const onReplica = await meridian([
      'manifest',
      'restore',
      `team/soft@${img.manifest.digest}`,
      '--url',
      c.replicas[0]!.url,
    ]);
    expect(onReplica.code).not.toBe(0);
    expect(onReplica.stderr).toMatch(/405.*primary region/);

    const restore = await meridian([
      'manifest',
      'restore',
      `team/soft@${img.manifest.digest}`,
      '--url',
      c.primary.url,
    ]);
    expect(restore.stderr).toBe('');
    expect(restore.stdout).toContain(`restored team/soft@${img.manifest.digest} (v1)`);
    for (const r of c.regions) {
      await waitFor(async () => (await status(r.url, 'v1')) === 200, `back in ${r.name}`);
      const rc = new RegistryClient(r.url);
      for (const b of img.blobs) {
        const got = await rc.get(`/v2/team/soft/blobs/${b.digest}`);
        expect(`sha256:${createHash('sha256').update(got.body).digest('hex')}`).toBe(b.digest);
      }
      await waitFor(
        async () =>
          (await new RepositoryLayout(stores.get(r.name)!).listTombstones('team/soft')).length ===
          0,
        `no tombstone left in ${r.name}`,
      );
    }

    // Delete again, purge the bin now: gone for good, and GC frees the bytes in every region.
    expect((await client.delete(`/v2/team/soft/manifests/${img.manifest.digest}`)).status).toBe(
      202,
    );
    const purged = await meridian([
      'manifest',
      'purge-deleted',
      'team/soft',
      '--url',
      c.primary.url,
    ]);
    expect(purged.stdout).toContain('purged 1 soft-deleted manifests');
    const layer = img.layers[0]!.digest;
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
        const l = new RepositoryLayout(stores.get(r.name)!);
        return (
          !(await l.hasBlob(parseDigest(layer))) &&
          (await l.listTombstones('team/soft')).length === 0
        );
      }, `the purged image freed in ${r.name}`);
  });
});
