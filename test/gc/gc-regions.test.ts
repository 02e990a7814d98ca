import { createHash } from 'node:crypto';
import { GarbageCollector } from '@meridian/lifecycle';
import { parseDigest } from '@meridian/oci';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { meridian } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { imageManifest, configBlob, randomBlob, type ImageBlob } from '../helpers/images';
import type { StorageKind } from '../helpers/node';
import { waitFor } from '../helpers/wait';

const ACCEPT = { Accept: 'application/vnd.oci.image.manifest.v1+json' };

async function storedBytes(store: ObjectStore): Promise<number> {
  return (await new RepositoryLayout(store).listBlobs()).reduce((n, b) => n + b.size, 0);
}

const kinds: StorageKind[] =
  process.env.MERIDIAN_TEST_S3_ENDPOINT === 'http://127.0.0.1:1' ? ['fs'] : ['fs', 's3'];

describe.each(kinds)('GC in every region (%s)', (kind) => {
  let c: TestCluster;
  let stores: Map<string, ObjectStore>;
  beforeAll(async () => {
    c = await startCluster({ storage: kind });
    await c.startWorkers();
    stores = new Map(
      await Promise.all(c.regions.map(async (r) => [r.name, await openStore(r.storage)] as const)),
    );
  });
  afterAll(async () => {
    for (const s of stores?.values() ?? []) await s.close();
    await c?.close();
  });

  const hasBlob = (region: string, digest: string) =>
    new RepositoryLayout(stores.get(region)!).hasBlob(parseDigest(digest));

  async function pullsIdentical(url: string, repo: string, tag: string, blobs: ImageBlob[]) {
    const client = new RegistryClient(url);
    const m = await client.get(`/v2/${repo}/manifests/${tag}`, { headers: ACCEPT });
    if (m.status !== 200) return false;
    for (const b of blobs) {
      const r = await client.get(`/v2/${repo}/blobs/${b.digest}`);
      if (r.status !== 200) return false;
      if (`sha256:${createHash('sha256').update(r.body).digest('hex')}` !== b.digest) return false;
    }
    return true;
  }

  it('push, delete, gc: the bytes are gone from the primary and every replica; the rest still pulls', async () => {
    const client = new RegistryClient(c.primary.url);
    const shared = randomBlob(64 * 1024);
    const [cfgA, onlyA] = [configBlob(), randomBlob(256 * 1024)];
    const [cfgB, onlyB] = [configBlob(), randomBlob(1024)];
    const mA = imageManifest({ config: cfgA, layers: [shared, onlyA] });
    const mB = imageManifest({ config: cfgB, layers: [shared, onlyB] });
    await client.pushImage('team/app', 'a', [cfgA, shared, onlyA], mA);
    await client.pushImage('team/app', 'b', [cfgB, shared, onlyB], mB);
    for (const r of c.replicas)
      await waitFor(
        async () => (await hasBlob(r.name, onlyA.digest)) && (await hasBlob(r.name, mA.digest)),
        `image a in ${r.name}`,
      );
    const before = new Map(
      await Promise.all(
        c.regions.map(async (r) => [r.name, await storedBytes(stores.get(r.name)!)] as const),
      ),
    );
    expect((await client.delete(`/v2/team/app/manifests/${mA.digest}`)).status).toBe(202);

    // A dry run says what would go, and deletes nothing.
    const dry = await meridian(['gc', '--url', c.primary.url, '--dry-run', '--grace', '0']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/region eastus \(primary, full\), dry run: would free/);
    expect(dry.stdout).toMatch(/blobs\s+3 /);
    expect(await hasBlob(c.primary.name, onlyA.digest)).toBe(true);

    const run = await meridian(['gc', '--url', c.primary.url, '--grace', '0']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/region eastus \(primary, full\): freed/);
    for (const d of [cfgA.digest, onlyA.digest, mA.digest])
      expect(await hasBlob('eastus', d)).toBe(false);
    expect(await storedBytes(stores.get('eastus')!)).toBe(
      before.get('eastus')! - cfgA.bytes.length - onlyA.bytes.length - mA.bytes.length,
    );

    // Replicas converge: the unlinks replicate, then each region's own GC frees the bytes.
    for (const r of c.replicas) {
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
        return !(await hasBlob(r.name, onlyA.digest));
      }, `the deleted image's bytes gone from ${r.name}`);
      for (const d of [cfgA.digest, mA.digest]) expect(await hasBlob(r.name, d)).toBe(false);
      expect(await storedBytes(stores.get(r.name)!)).toBeLessThan(before.get(r.name)!);
    }
    for (const r of c.regions)
      expect(await pullsIdentical(r.url, 'team/app', 'b', [cfgB, shared, onlyB])).toBe(true);
    expect(mB.digest).toMatch(/^sha256:/);
  });

  // The paths below do not depend on the driver: the fs cluster covers them (CI time).
  const fsOnly = kind === 'fs' ? it : it.skip;

  fsOnly(
    'an incremental run on the primary is followed by each replica collecting what it freed',
    async () => {
      const client = new RegistryClient(c.primary.url);
      const [cfg, layer] = [configBlob(), randomBlob(32 * 1024)];
      const m = imageManifest({ config: cfg, layers: [layer] });
      await client.pushImage('team/inc', 'v1', [cfg, layer], m);
      for (const r of c.replicas)
        await waitFor(async () => hasBlob(r.name, m.digest), `the image in ${r.name}`);
      expect((await client.delete(`/v2/team/inc/manifests/${m.digest}`)).status).toBe(202);
      // The delete's note is written by a subscriber after the reply: wait for the run to see it.
      await waitFor(async () => {
        const out = await meridian(['gc', '--url', c.primary.url, '--incremental', '--grace', '0']);
        if (out.code !== 0) throw new Error(out.stderr);
        return !(await hasBlob('eastus', layer.digest));
      }, 'the incremental run on the primary');
      // No command for the replicas: the primary's run queued their share.
      for (const r of c.replicas)
        await waitFor(
          async () =>
            !(await hasBlob(r.name, layer.digest)) &&
            !(await hasBlob(r.name, cfg.digest)) &&
            !(await hasBlob(r.name, m.digest)),
          `${r.name} collecting what the primary freed`,
          90_000,
        );
    },
  );

  fsOnly(
    'GC in every region while a replica is mid-copy and while a fallback pull tees the same blob: both complete',
    async () => {
      const client = new RegistryClient(c.primary.url);
      const replica = c.replicas[0]!;
      const gcAll = async () => {
        for (const r of c.regions) {
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
        }
      };
      // Mid-copy: a 6 MiB layer on its way to the replicas while every region is collected.
      const [cfg, big] = [configBlob(), randomBlob(6 * 1024 * 1024)];
      const m = imageManifest({ config: cfg, layers: [big] });
      await client.pushImage('team/copy', 'v1', [cfg, big], m);
      let copied = false;
      const gcLoop = (async () => {
        while (!copied) await gcAll();
      })();
      for (const r of c.replicas)
        await waitFor(async () => hasBlob(r.name, m.digest), `the image in ${r.name}`);
      copied = true;
      await gcLoop;
      for (const r of c.regions)
        expect(await pullsIdentical(r.url, 'team/copy', 'v1', [cfg, big])).toBe(true);

      // Fallback: workers stopped, a pull from the replica tees the blob from the primary while
      // every region is collected over and over.
      await c.stopWorkers();
      try {
        const [cfg2, big2] = [configBlob(), randomBlob(6 * 1024 * 1024)];
        const m2 = imageManifest({ config: cfg2, layers: [big2] });
        await client.pushImage('team/tee', 'v1', [cfg2, big2], m2);
        let pulled = false;
        const loop = (async () => {
          // The replica's collector runs here (its workers, which run it normally, are stopped).
          const replicaGc = new GarbageCollector({
            region: replica.name,
            store: stores.get(replica.name)!,
            role: 'replica',
            primary: stores.get(c.primary.name)!,
          });
          while (!pulled) {
            const out = await meridian(['gc', '--url', c.primary.url, '--grace', '0']);
            if (out.code !== 0) throw new Error(out.stderr);
            await replicaGc.run({ graceMs: 0 });
          }
        })();
        const ok = await pullsIdentical(replica.url, 'team/tee', 'v1', [cfg2, big2]);
        pulled = true;
        await loop;
        expect(ok).toBe(true);
        // What the tee stored stays: the primary still holds it, so the replica's GC keeps it.
        await waitFor(async () => hasBlob(replica.name, big2.digest), 'the teed blob stored');
        expect(await pullsIdentical(replica.url, 'team/tee', 'v1', [cfg2, big2])).toBe(true);
      } finally {
        await c.startWorkers();
      }
      const out = await meridian([
        'gc',
        '--url',
        c.primary.url,
        '--region',
        replica.name,
        '--grace',
        '0',
      ]);
      expect(out.code).toBe(0);
      expect(await hasBlob(replica.name, m.digest)).toBe(true);
    },
  );

  fsOnly('refuses an unknown region and a malformed grace, changing nothing', async () => {
    const bad = await meridian(['gc', '--url', c.primary.url, '--region', 'mars']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/400 unknown region: mars/);
    const res = await new RegistryClient(c.primary.url).post('/meridian/v1/admin/gc', {
      body: JSON.stringify({ graceSeconds: -1 }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(res.status).toBe(400);
  });
});
