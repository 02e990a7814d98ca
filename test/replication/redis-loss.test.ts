import { Redis } from 'ioredis';
import { parseDigest } from '@meridian/oci';
import { Layout, exists, openStore } from '@meridian/storage';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image, randomBlob, type Image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

const ACCEPT = {
  Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
};

interface RegionRow {
  region: string;
  pending: number | null;
  lagSeconds: number | null;
  queue: { waiting: number; active: number; delayed: number; failed: number } | null;
}

async function regionRow(c: TestCluster, region: string): Promise<RegionRow | undefined> {
  const res = await new RegistryClient(c.primary.url).get('/meridian/v1/replication/regions');
  return res.json<{ regions: RegionRow[] }>().regions.find((r) => r.region === region);
}

/** Waits until the region has no queued, running or pending work, and its lag is 0. */
async function drained(c: TestCluster, region: string, what: string): Promise<void> {
  await waitFor(
    async () => {
      const r = await regionRow(c, region);
      const q = r?.queue;
      return !!q && q.waiting + q.active + q.delayed === 0 && r.pending === 0 && r.lagSeconds === 0;
    },
    what,
    30_000,
  );
}

/** The Redis keys a sync job's de-duplication lives in (see packages/replication/src/queues.ts). */
function replKeys(c: TestCluster, region: string) {
  const p = `${c.config.replication.prefix}:repl:${region}`;
  return { queued: `${p}:queued`, queuedAt: `${p}:queuedAt`, pending: `${p}:pending` };
}

/**
 * Stale read: the replica answered with a digest the primary had already replaced (its 201 for
 * the newer digest had arrived) before the read was sent.
 */
class FreshnessProbe {
  /** tag → digest → when the primary confirmed it was replaced (ms, performance.now). */
  private readonly replacedAt = new Map<string, Map<string, number>>();
  private readonly current = new Map<string, string>();
  reads = 0;
  stale: string[] = [];

  set(tag: string, digest: string): void {
    const prev = this.current.get(tag);
    if (prev && prev !== digest) {
      const m = this.replacedAt.get(tag) ?? new Map<string, number>();
      if (!m.has(prev)) m.set(prev, performance.now());
      this.replacedAt.set(tag, m);
    }
    this.replacedAt.get(tag)?.delete(digest);
    this.current.set(tag, digest);
  }

  check(tag: string, digest: string, sentAt: number): void {
    this.reads++;
    const at = this.replacedAt.get(tag)?.get(digest);
    if (at !== undefined && at < sentAt) this.stale.push(`${tag} → ${digest.slice(7, 19)}`);
  }
}

/** How many live tag announcements the region's replica has heard (in-process nodes share one registry). */
async function announcementsHeard(url: string, region: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) =>
      l.startsWith(`meridian_replica_tag_announcement_seconds_count{region="${region}"}`),
    );
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('replication when Redis loses its data', () => {
  let c: TestCluster;
  beforeEach(async () => {
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
  });
  afterEach(async () => {
    await c?.close();
  });

  it('never serves a tag older than the primary’s across FLUSHALL during tag moves and a replica restart', async () => {
    const repo = 'flip/app';
    const primary = new RegistryClient(c.primary.url);
    const replica = new RegistryClient(c.replicas[0]!.url);
    const images: Image[] = Array.from({ length: 8 }, () => image());
    for (const img of images)
      await primary.pushImage(repo, img.manifest.digest, img.blobs, img.manifest);
    const tags = ['a', 'b', 'c', 'd', 'e'];
    const probe = new FreshnessProbe();
    // ADR 0008's promise: a replica never serves a tag older than the primary's tag *as announced
    // to that replica*. The announcement leaves the primary after its 201 (the reply waits on no
    // subscriber), so a read in between may see the previous tag by design. A tag counts as
    // replaced once the replica heard the move — what its announcement histogram counts.
    let moves = 0;
    const heardBase = await announcementsHeard(c.replicas[0]!.url, c.replicas[0]!.name);
    const move = async (tag: string, img: Image) => {
      const r = await primary.putManifest(repo, tag, img.manifest);
      if (r.status !== 201) throw new Error(`moving ${tag}: ${r.status}`);
      moves++;
      await waitFor(
        async () =>
          (await announcementsHeard(c.replicas[0]!.url, c.replicas[0]!.name)) - heardBase >= moves,
        `the replica to hear move ${moves} (${tag})`,
        10_000,
      );
      probe.set(tag, img.manifest.digest);
    };
    for (const t of tags) await move(t, images[0]!);
    await c.startWorkers();
    for (const t of tags)
      await waitFor(
        () => exists(replicaStore, Layout.tagCurrent(repo, t)),
        `${repo}:${t} in the replica`,
      );
    // The region falls behind: no worker applies what follows until the end.
    await c.stopWorkers();

    let reading = true;
    const reader = (async () => {
      while (reading) {
        for (const t of tags) {
          const sentAt = performance.now();
          const r = await replica
            .get(`/v2/${repo}/manifests/${t}`, { headers: ACCEPT })
            .catch(() => undefined); // the replica is restarting
          if (r?.status === 200) probe.check(t, String(r.header('docker-content-digest')), sentAt);
        }
      }
    })();
    // Every tag moves; d and e move only before the flush, so only Redis knew they were behind.
    for (let round = 1; round <= 3; round++) for (const t of tags) await move(t, images[round]!);
    const redis = new Redis(c.redis.url);
    await redis.flushall();
    for (let round = 4; round <= 5; round++)
      for (const t of ['a', 'b', 'c']) await move(t, images[round]!);
    // A replica node restarts (nodes are stateless): it only has what Redis still holds.
    await c.stopNode(c.replicas[0]!.name);
    await c.startNode(c.replicas[0]!.name);
    for (let round = 6; round <= 7; round++)
      for (const t of ['a', 'b']) await move(t, images[round]!);
    await new Promise((r) => setTimeout(r, 500));
    // Workers come back; the reconcile they run brings the region level.
    await c.startWorkers();
    await drained(c, c.replicas[0]!.name, 'the region to catch up');
    await new Promise((r) => setTimeout(r, 1500));
    reading = false;
    await reader;
    redis.disconnect();
    expect(probe.reads).toBeGreaterThan(50);
    expect(probe.stale).toEqual([]);
  });

  it('queues again by itself after FLUSHALL drops queued jobs, and drains to a truthful zero', async () => {
    const region = c.replicas[0]!.name;
    const primary = new RegistryClient(c.primary.url);
    const workers = await c.startWorkers();
    await drained(c, region, 'the start-up reconcile');
    // Jobs are queued but not yet taken (the queue is paused; FLUSHALL also forgets the pause).
    await workers.queues.queue(region).pause();
    const img = image({ layers: 2 });
    await primary.pushImage('lost/app', 'v1', img.blobs, img.manifest);
    expect((await regionRow(c, region))?.pending).toBeGreaterThan(0);
    const redis = new Redis(c.redis.url);
    await redis.flushall();
    redis.disconnect();
    // The workers keep running, mid-interval (an hour here): only noticing that Redis lost its
    // data can bring the region level before then.
    await waitFor(
      () => exists(replicaStore, Layout.tagCurrent('lost/app', 'v1')),
      'lost/app:v1 in the replica after FLUSHALL',
      30_000,
    );
    await drained(c, region, 'pending and lag back to 0');
  });

  it('a de-duplication mark left without its job (primary killed between them) does not block the object', async () => {
    const region = c.replicas[0]!.name;
    const blob = randomBlob(1024);
    const repo = 'orphan/app';
    const id = `blob|${repo}|${blob.digest.replace(':', '@')}`;
    const k = replKeys(c, region);
    const redis = new Redis(c.redis.url);
    // What a primary killed after the mark and before `queue.add` leaves behind.
    await redis
      .multi()
      .hset(k.queued, id, `${id}#999`)
      .hset(k.queuedAt, id, String(Date.now()))
      .zadd(k.pending, Date.now(), id)
      .exec();
    redis.disconnect();
    await c.startWorkers();
    const r = await new RegistryClient(c.primary.url).uploadBlob(repo, blob);
    expect(r.status).toBe(201);
    const link = Layout.layerLink(repo, parseDigest(blob.digest));
    await waitFor(() => exists(replicaStore, link), 'the blob in the replica', 15_000);
    await drained(c, region, 'pending and lag back to 0');
  });

  it('a pending change whose job vanished is queued again and drains to zero', async () => {
    const region = c.replicas[0]!.name;
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('gone/app', 'v1', img.blobs, img.manifest);
    await c.startWorkers();
    await drained(c, region, 'the push replicated');
    const k = replKeys(c, region);
    const redis = new Redis(c.redis.url);
    // A job that started (its mark cleared) and then vanished: the change stays pending.
    await redis.zadd(k.pending, Date.now() - 60_000, 'tag|gone/app|v1');
    redis.disconnect();
    expect((await regionRow(c, region))?.pending).toBe(1);
    await drained(c, region, 'the orphaned pending change to drain');
  });

  let replicaStore: Awaited<ReturnType<typeof openStore>>;
  beforeEach(async () => {
    replicaStore = await openStore(c.replicas[0]!.storage);
  });
  afterEach(async () => {
    await replicaStore?.close();
  });
});
