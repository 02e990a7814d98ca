/**
 * The sync queue's de-duplication (packages/replication/src/queues.ts), against a real
 * redis-server and no registry: at most one waiting job per (region, object), a change that
 * lands while the job runs queues another, a mark without its job never blocks the object, and
 * the oldest unapplied change's commit time is what the region's lag is measured from. The
 * decisions are Lua scripts run inside Redis, so they are tested where they run.
 */
import { ReplicationQueues, type SyncTarget } from '@meridian/replication';
import { startRedis, type TestRedis } from '../helpers/redis';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const blob = (repository: string, d = digest('a')): SyncTarget => ({
  kind: 'blob',
  repository,
  digest: d,
});
const tag = (repository: string, t: string): SyncTarget => ({ kind: 'tag', repository, tag: t });

describe('replication queue de-duplication', () => {
  let redis: TestRedis;
  let queues: ReplicationQueues;
  let n = 0;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  beforeEach(() => {
    queues = new ReplicationQueues({ redisUrl: redis.url, prefix: `dedup${++n}` });
  });
  afterEach(async () => {
    await queues.close();
  });

  /** Jobs waiting in the region's queue, front first: [kind|repository|ref, committedAt]. */
  const waiting = async (region: string) =>
    (await queues.queue(region).getJobs(['prioritized', 'waiting'], 0, -1, true)).map((j) => [
      String(j.id).split('#')[0],
      j.data.committedAt,
    ]);

  it('queues one job per (region, object), whatever the number of changes', async () => {
    expect(await queues.enqueue('eu', blob('app'), 100)).toBe(true);
    expect(await queues.enqueue('eu', blob('app'), 200)).toBe(false);
    expect(await queues.enqueue('eu', blob('app'), 300)).toBe(false);
    // Another region, another repository, another object: each its own job.
    expect(await queues.enqueue('ap', blob('app'), 150)).toBe(true);
    expect(await queues.enqueue('eu', blob('other'), 160)).toBe(true);
    expect(await queues.enqueue('eu', tag('app', 'v1'), 170)).toBe(true);
    expect(await queues.enqueue('eu', blob('app', digest('b')), 180)).toBe(true);

    expect((await waiting('eu')).sort()).toEqual(
      [
        ['blob|app|sha256@' + 'a'.repeat(64), 100],
        ['blob|other|sha256@' + 'a'.repeat(64), 160],
        ['tag|app|v1', 170],
        ['blob|app|sha256@' + 'b'.repeat(64), 180],
      ].sort(),
    );
    expect(await waiting('ap')).toHaveLength(1);
    expect(await queues.pendingCount('eu')).toBe(4);
    // Lag is measured from the oldest change the waiting job covers.
    expect(await queues.pendingSince('eu', blob('app'))).toBe(100);
    expect(await queues.oldestPending('eu')).toBe(100);
  });

  it('queues a second job for a change that lands while the first runs', async () => {
    await queues.enqueue('eu', tag('app', 'v1'), 100);
    const [job] = await queues.queue('eu').getJobs(['waiting']);
    const first = String(job!.id);
    await queues.started('eu', tag('app', 'v1'), first);
    // The running job may already have read the primary's state: this change needs a new job.
    expect(await queues.enqueue('eu', tag('app', 'v1'), 200)).toBe(true);
    expect(await queues.enqueue('eu', tag('app', 'v1'), 300)).toBe(false);
    // (No worker runs here, so the first job is still listed as waiting too.)
    const second = (await queues.queue('eu').getJobs(['waiting']))
      .map((j) => String(j.id))
      .filter((id) => id !== first);
    expect(second).toHaveLength(1);

    // The first finishing covers the change from 100; the one from 200 stays pending.
    expect(await queues.finished('eu', tag('app', 'v1'), first)).toBe(100);
    expect(await queues.pendingSince('eu', tag('app', 'v1'))).toBe(200);
    await queues.started('eu', tag('app', 'v1'), second[0]!);
    expect(await queues.finished('eu', tag('app', 'v1'), second[0]!)).toBe(200);
    expect(await queues.pendingSince('eu', tag('app', 'v1'))).toBeUndefined();
    expect(await queues.pendingCount('eu')).toBe(0);
  });

  it('never lets a mark outlive its job: a removed job does not block the object', async () => {
    await queues.enqueue('eu', blob('app'), 100);
    const [job] = await queues.queue('eu').getJobs(['waiting']);
    await job!.remove(); // e.g. a queue cleaned by hand, or the job lost with Redis data
    expect(await queues.enqueue('eu', blob('app'), 200)).toBe(true);
    const jobs = await queues.queue('eu').getJobs(['waiting']);
    expect(jobs.map((j) => j.data.committedAt)).toEqual([200]);
    expect(String(jobs[0]!.id)).not.toBe(String(job!.id));
  });

  it('moves a duplicate to the front when a replica missed the object', async () => {
    await queues.enqueue('eu', blob('a'), 100);
    await queues.enqueue('eu', blob('b'), 110);
    await queues.enqueue('eu', blob('c'), 120);
    expect(await queues.enqueue('eu', blob('b'), 130, true)).toBe(false);
    const order = await waiting('eu');
    expect(order).toHaveLength(3);
    expect(order[0]).toEqual(['blob|b|sha256@' + 'a'.repeat(64), 110]);
  });

  it('queues again a pending change no live job will apply (its job vanished)', async () => {
    await queues.enqueue('eu', blob('app'), Date.now() - 60_000);
    const [job] = await queues.queue('eu').getJobs(['waiting']);
    await job!.remove();
    expect(await queues.requeueOrphans('eu', 5000)).toBe(1);
    expect(await waiting('eu')).toHaveLength(1);
    // Its job is live now: nothing more to requeue, and no duplicate.
    expect(await queues.requeueOrphans('eu', 5000)).toBe(0);
    expect(await waiting('eu')).toHaveLength(1);
  });
});
