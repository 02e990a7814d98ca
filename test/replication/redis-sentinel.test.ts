/**
 * Redis Sentinel (issue 17): a cluster whose `redis` config names Sentinels, not a server. The
 * master is failed over (`SENTINEL FAILOVER`) in the middle of a burst of pushes and tag moves,
 * while a reader keeps reading the replica's tags. Nothing a client was told is committed may be
 * lost, no replica read after the failover may return a tag the primary had already moved, and
 * replication must converge with its lag back to 0 — through the new master.
 */
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image, type Image } from '../helpers/images';
import { startSentinelRedis, type TestSentinelRedis } from '../helpers/redis-sentinel';
import { waitFor } from '../helpers/wait';

/**
 * ADR 0008: a replica hears of a tag move a little after the primary's 201 (its event loop, the
 * network; all < 100 ms on a loaded 2-core host), and may serve the previous tag meanwhile. A
 * read sent later than this after the 201 that still gets the old digest is stale: what a lost
 * announcement, or a tag watch stuck on a demoted master, would cause.
 */
const ANNOUNCEMENT_WINDOW_MS = 250;

const ACCEPT = {
  Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
};

interface RegionRow {
  region: string;
  pending: number | null;
  lagSeconds: number | null;
  queue: { waiting: number; active: number; delayed: number; failed: number } | null;
}

describe('Redis Sentinel failover during pushes', () => {
  let s: TestSentinelRedis;
  let c: TestCluster;
  beforeAll(async () => {
    s = await startSentinelRedis();
    c = await startCluster({ regions: ['eastus', 'westeurope'], redis: s });
    await c.startWorkers();
  });
  afterAll(async () => {
    await c?.close();
  });

  it('loses no image, serves no stale tag once the failover is over, and replication converges', async () => {
    const repo = 'sentinel/app';
    const primary = new RegistryClient(c.primary.url);
    const replica = new RegistryClient(c.replicas[0]!.url);
    const tags = ['latest', 'stable'];
    // tag → digest the primary confirmed last, and when each older digest was replaced.
    const current = new Map<string, string>();
    const replacedAt = new Map<string, number>(); // `${tag}@${digest}` → ms
    const move = async (tag: string, img: Image) => {
      const r = await primary.putManifest(repo, tag, img.manifest);
      expect({ tag, status: r.status }).toEqual({ tag, status: 201 });
      const prev = current.get(tag);
      if (prev && prev !== img.manifest.digest) replacedAt.set(`${tag}@${prev}`, performance.now());
      replacedAt.delete(`${tag}@${img.manifest.digest}`);
      current.set(tag, img.manifest.digest);
    };

    let failoverOverAt = Infinity;
    const stale: string[] = [];
    let readsAfter = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        for (const tag of tags) {
          const sentAt = performance.now();
          const r = await replica
            .get(`/v2/${repo}/manifests/${tag}`, { headers: ACCEPT })
            .catch(() => undefined);
          if (r?.status !== 200 || sentAt < failoverOverAt) continue;
          readsAfter++;
          const digest = String(r.header('docker-content-digest'));
          const replaced = replacedAt.get(`${tag}@${digest}`);
          if (replaced !== undefined && replaced + ANNOUNCEMENT_WINDOW_MS < sentAt)
            stale.push(
              `${tag} → ${digest.slice(7, 19)} ${Math.round(sentAt - replaced)} ms after the 201, ${Math.round(sentAt - failoverOverAt)} ms after the failover`,
            );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const pushed: Image[] = [];
    let failover: Promise<number> | undefined;
    const before = await s.masterPort();
    for (let i = 0; i < 30; i++) {
      if (i === 8)
        failover = s.failover().then((ms) => {
          failoverOverAt = performance.now();
          return ms;
        });
      const img = image({ layers: 2 });
      await primary.pushImage(repo, `v${i}`, img.blobs, img.manifest);
      pushed.push(img);
      for (const tag of tags) await move(tag, img);
    }
    const ms = await failover!;
    expect(await s.masterPort()).not.toBe(before);
    expect(ms).toBeLessThan(30_000);
    // More pushes and moves on the new master, while the reader watches (new digests only: a
    // digest a tag held before would make a read that beats the 201 look stale).
    for (let i = 30; i < 36; i++) {
      const img = image({ layers: 1 });
      await primary.pushImage(repo, `v${i}`, img.blobs, img.manifest);
      pushed.push(img);
      for (const tag of tags) await move(tag, img);
    }

    // 0 images lost: every pushed image is served, by the primary and, once copied, the replica.
    for (const img of pushed) {
      const r = await primary.get(`/v2/${repo}/manifests/${img.manifest.digest}`, {
        headers: ACCEPT,
      });
      expect({ digest: img.manifest.digest, status: r.status }).toEqual({
        digest: img.manifest.digest,
        status: 200,
      });
    }
    for (const img of pushed)
      await waitFor(
        async () => {
          const m = await replica.head(`/v2/${repo}/manifests/v${pushed.indexOf(img)}`, {
            headers: ACCEPT,
          });
          return m.status === 200 && m.header('docker-content-digest') === img.manifest.digest;
        },
        `v${pushed.indexOf(img)} in the replica`,
        60_000,
      );
    // Replication converges through the new master: nothing queued or pending, lag 0.
    await waitFor(
      async () => {
        const res = await primary.get('/meridian/v1/replication/regions');
        const row = res
          .json<{ regions: RegionRow[] }>()
          .regions.find((r) => r.region === 'westeurope');
        const q = row?.queue;
        return (
          !!q && q.waiting + q.active + q.delayed === 0 && row.pending === 0 && row.lagSeconds === 0
        );
      },
      'the region to drain with lag 0',
      60_000,
    );
    for (const tag of tags) {
      const r = await replica.get(`/v2/${repo}/manifests/${tag}`, { headers: ACCEPT });
      expect(r.header('docker-content-digest')).toBe(current.get(tag));
    }
    await new Promise((r) => setTimeout(r, 500));
    reading = false;
    await reader;
    expect(readsAfter).toBeGreaterThan(10);
    expect(stale).toEqual([]);
  });
});
