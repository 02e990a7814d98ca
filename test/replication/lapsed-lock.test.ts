/**
 * A worker paused past its lock's lease (SIGSTOP, a long GC pause, a stuck disk) while it copies
 * a manifest. Meanwhile the manifest is deleted on the primary and another worker, finding the
 * lock lapsed, applies the deletion to the region. When the paused worker resumes, it writes
 * the copy it had read before the deletion: the deleted manifest must not come back in the
 * region (it used to stay until the next reconcile, served by the replica all that time).
 *
 * The pause is a write held at the region's store, with a lease shorter than the lock's refresh
 * period (as a process that is not running does not refresh it).
 */
import type { ObjectStore } from '@meridian/storage';
import { Layout, RepositoryLayout, openStore } from '@meridian/storage';
import { parseDigest } from '@meridian/oci';
import { RegionSync, ReplicationQueues, syncMutex } from '@meridian/replication';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';

/** Shorter than the lock's refresh period (1 s): the lease lapses while its holder is held. */
const LEASE_MS = 300;

/** `store`, with its first `put` of `key` held until `resume()` (a paused worker). */
function pauseAt(store: ObjectStore, key: string) {
  let resume!: () => void;
  const resumed = new Promise<void>((r) => (resume = r));
  let reachedIt!: () => void;
  const reached = new Promise<void>((r) => (reachedIt = r));
  const held: ObjectStore = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const f = v as (...a: unknown[]) => unknown;
      if (prop !== 'put') return f.bind(target);
      return async (k: string, ...rest: unknown[]) => {
        if (k === key) {
          reachedIt();
          await resumed;
        }
        return f.apply(target, [k, ...rest]);
      };
    },
  });
  return { store: held, reached, resume };
}

describe('a worker paused past its lock while copying a deleted manifest', () => {
  let c: TestCluster;
  let queues: ReplicationQueues;

  beforeAll(async () => {
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
    queues = new ReplicationQueues({
      redisUrl: c.redis.url,
      prefix: `l${Math.random().toString(36).slice(2, 8)}`,
    });
  });
  afterAll(async () => {
    await queues?.close();
    await c?.close();
  });

  it('does not bring the manifest back in the region when it resumes', async () => {
    const repo = 'lapsed/app';
    const img = image();
    const client = new RegistryClient(c.primary.url);
    await client.pushImage(repo, img.manifest.digest, img.blobs, img.manifest);
    const west = c.replicas[0]!;
    const [primaryStore, westStore] = await Promise.all([
      openStore(c.primary.storage),
      openStore(west.storage),
    ]);
    const d = parseDigest(img.manifest.digest);
    const revision = Layout.revisionLink(repo, d);

    // Worker 1 reaches the manifest's last write (its revision link), then is paused.
    const pause = pauseAt(westStore, revision);
    const mutex = syncMutex(queues, 'westeurope', LEASE_MS);
    const worker1 = new RegionSync('westeurope', primaryStore, pause.store, mutex);
    const worker2 = new RegionSync('westeurope', primaryStore, westStore, mutex);
    const target = { kind: 'manifest' as const, repository: repo, digest: img.manifest.digest };

    const first = worker1.apply(target);
    await pause.reached;
    expect((await client.delete(`/v2/${repo}/manifests/${img.manifest.digest}`)).status).toBe(202);
    // Worker 2 gets the lapsed lock and applies the deletion (nothing to remove yet).
    await worker2.apply(target);
    pause.resume();
    await first;

    expect(await new RepositoryLayout(westStore).hasRevision(repo, d)).toBe(false);
    // What a client of the region sees: the primary's answer, not a deleted manifest.
    const res = await new RegistryClient(west.url).get(
      `/v2/${repo}/manifests/${img.manifest.digest}`,
      { headers: { Accept: img.manifest.mediaType } },
    );
    expect(res.status).toBe(404);
  });

  it('does not link a deleted layer in the region again when it resumes', async () => {
    const repo = 'lapsed/layer';
    const img = image();
    const client = new RegistryClient(c.primary.url);
    await client.pushImage(repo, 'v1', img.blobs, img.manifest);
    const west = c.replicas[0]!;
    const [primaryStore, westStore] = await Promise.all([
      openStore(c.primary.storage),
      openStore(west.storage),
    ]);
    const layer = img.layers[0]!;
    const d = parseDigest(layer.digest);
    // Worker 1 has read the primary's link and copied the bytes; it is paused before its link.
    const pause = pauseAt(westStore, Layout.layerLink(repo, d));
    const mutex = syncMutex(queues, 'westeurope', LEASE_MS);
    const worker1 = new RegionSync('westeurope', primaryStore, pause.store, mutex);
    const worker2 = new RegionSync('westeurope', primaryStore, westStore, mutex);
    const target = { kind: 'blob' as const, repository: repo, digest: layer.digest };

    const first = worker1.apply(target);
    await pause.reached;
    expect((await client.delete(`/v2/${repo}/blobs/${layer.digest}`)).status).toBe(202);
    await worker2.apply(target);
    pause.resume();
    await first;

    expect(await new RepositoryLayout(westStore).hasLayer(repo, d)).toBe(false);
  });
});
