/**
 * The sync queue's de-duplication with no Redis server (issue 11): Redis is replaced at its
 * module seam (`@meridian/redis`'s `createRedis`) by ioredis-mock, which runs the queue's own Lua
 * scripts in an embedded Lua VM over in-memory data, and BullMQ by a small in-memory queue that
 * keeps each job's hash where the scripts look for it (`<prefix>:<queue>:<job id>`). The same
 * behaviours as test/replication/queue-dedup.test.ts, which runs them on a real redis-server —
 * except `requeueOrphans`, whose script builds its answer with `table.insert`, which the mock's
 * Lua bridge does not hand back as a list (that one is tested on the real server only).
 */
import { Command, type Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { ReplicationQueues } from './queues';
import type { SyncTarget } from './targets';

jest.mock('@meridian/redis', () => ({
  ...jest.requireActual<typeof import('@meridian/redis')>('@meridian/redis'),
  createRedis: () => new RedisMock(),
}));

// ioredis-mock 8 calls ioredis's reply transformers (WITHSCORES pairs) without the context
// ioredis 6 passes them (protocol, reply mapping): give them RESP2's, as a real connection has.
const transformers = (
  Command as unknown as {
    _transformer: { reply: Record<string, (r: unknown, c?: unknown) => unknown> };
  }
)._transformer.reply;
for (const [name, f] of Object.entries(transformers))
  transformers[name] = (r, c) => f(r, c ?? { protocol: 2, replyMapping: 'legacy' });

/** What the fake BullMQ records: jobs by queue name, in the order a worker would take them. */
const queues = new Map<string, FakeJob[]>();

interface FakeJob {
  id: string;
  data: { committedAt: number };
  state: 'waiting' | 'delayed' | 'active';
}

jest.mock('bullmq', () => {
  class Queue {
    private readonly redis: Redis;
    constructor(
      readonly name: string,
      private readonly opts: { connection: Redis; prefix: string },
    ) {
      this.redis = opts.connection;
      if (!queues.has(name)) queues.set(name, []);
    }
    key(id: string): string {
      return `${this.opts.prefix}:${this.name}:${id}`;
    }
    async add(_: string, data: FakeJob['data'], o: { jobId: string; lifo?: boolean }) {
      await this.redis.hset(this.key(o.jobId), 'data', JSON.stringify(data));
      const job: FakeJob = { id: o.jobId, data, state: 'waiting' };
      const list = queues.get(this.name)!;
      if (o.lifo) list.unshift(job);
      else list.push(job);
      return job;
    }
    close() {
      return Promise.resolve();
    }
  }
  class Job {
    static async fromId(q: Queue, id: string) {
      const job = queues.get(q.name)!.find((j) => j.id === id);
      return job && new Job(q, job);
    }
    constructor(
      private readonly q: Queue,
      private readonly job: FakeJob,
    ) {}
    getState() {
      return Promise.resolve(this.job.state);
    }
    promote() {
      this.job.state = 'waiting';
      return this.changePriority();
    }
    changePriority() {
      const list = queues.get(this.q.name)!;
      list.splice(list.indexOf(this.job), 1);
      list.unshift(this.job);
      return Promise.resolve();
    }
  }
  return { Queue, Job };
});

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const blob = (repository: string, d = digest('a')): SyncTarget => ({
  kind: 'blob',
  repository,
  digest: d,
});
const tag = (repository: string, t: string): SyncTarget => ({ kind: 'tag', repository, tag: t });

describe('replication queue de-duplication (no Redis server)', () => {
  let q: ReplicationQueues;
  let n = 0;
  beforeEach(() => {
    queues.clear();
    q = new ReplicationQueues({ redisUrl: 'redis://unused', prefix: `unit${++n}` });
  });
  afterEach(async () => {
    await q.close();
  });

  /** Jobs of a region, front first: [object, committedAt]. */
  const jobs = (region: string) =>
    (queues.get(ReplicationQueues.queueName(region)) ?? []).map((j) => [
      j.id.split('#')[0],
      j.data.committedAt,
    ]);
  const bullKey = (region: string, id: string) =>
    `${q.bullPrefix}:${ReplicationQueues.queueName(region)}:${id}`;

  it('queues one job per (region, object), whatever the number of changes', async () => {
    expect(await q.enqueue('eu', blob('app'), 100)).toBe(true);
    expect(await q.enqueue('eu', blob('app'), 200)).toBe(false);
    expect(await q.enqueue('eu', blob('app'), 300)).toBe(false);
    expect(await q.enqueue('ap', blob('app'), 150)).toBe(true);
    expect(await q.enqueue('eu', blob('other'), 160)).toBe(true);
    expect(await q.enqueue('eu', tag('app', 'v1'), 170)).toBe(true);
    expect(await q.enqueue('eu', blob('app', digest('b')), 180)).toBe(true);

    expect(jobs('eu')).toEqual([
      [`blob|app|sha256@${'a'.repeat(64)}`, 100],
      [`blob|other|sha256@${'a'.repeat(64)}`, 160],
      ['tag|app|v1', 170],
      [`blob|app|sha256@${'b'.repeat(64)}`, 180],
    ]);
    expect(jobs('ap')).toHaveLength(1);
    expect(await q.pendingCount('eu')).toBe(4);
    // Lag is measured from the oldest change the waiting job covers.
    expect(await q.pendingSince('eu', blob('app'))).toBe(100);
    expect(await q.oldestPending('eu')).toBe(100);
  });

  it('queues a second job for a change that lands while the first runs', async () => {
    await q.enqueue('eu', tag('app', 'v1'), 100);
    const first = queues.get('sync-eu')![0]!.id;
    await q.started('eu', tag('app', 'v1'), first);
    // The running job may already have read the primary's state: this change needs a new job.
    expect(await q.enqueue('eu', tag('app', 'v1'), 200)).toBe(true);
    expect(await q.enqueue('eu', tag('app', 'v1'), 300)).toBe(false);
    const second = queues.get('sync-eu')![1]!.id;
    expect(second).not.toBe(first);

    // The first finishing covers the change from 100; the one from 200 stays pending.
    expect(await q.finished('eu', tag('app', 'v1'), first)).toBe(100);
    expect(await q.pendingSince('eu', tag('app', 'v1'))).toBe(200);
    await q.started('eu', tag('app', 'v1'), second);
    expect(await q.finished('eu', tag('app', 'v1'), second)).toBe(200);
    expect(await q.pendingSince('eu', tag('app', 'v1'))).toBeUndefined();
    expect(await q.pendingCount('eu')).toBe(0);
  });

  it('never lets a mark outlive its job: a removed or finished job does not block the object', async () => {
    await q.enqueue('eu', blob('app'), 100);
    const [job] = queues.get('sync-eu')!;
    await q.redis.del(bullKey('eu', job!.id)); // removed by hand, or lost with Redis data
    expect(await q.enqueue('eu', blob('app'), 200)).toBe(true);
    const again = queues.get('sync-eu')![1]!;
    expect(again.id).not.toBe(job!.id);
    // A job that finished (BullMQ sets finishedOn) without clearing its mark does not block either.
    await q.redis.hset(bullKey('eu', again.id), 'finishedOn', String(Date.now()));
    expect(await q.enqueue('eu', blob('app'), 300)).toBe(true);
  });

  it('moves the waiting job to the front when a replica missed the object', async () => {
    await q.enqueue('eu', blob('a'), 100);
    await q.enqueue('eu', blob('b'), 110);
    await q.enqueue('eu', blob('c'), 120);
    expect(await q.enqueue('eu', blob('b'), 130, true)).toBe(false);
    expect(jobs('eu').map(([id]) => id)).toEqual([
      `blob|b|sha256@${'a'.repeat(64)}`,
      `blob|a|sha256@${'a'.repeat(64)}`,
      `blob|c|sha256@${'a'.repeat(64)}`,
    ]);
    // A delayed (backing-off) job is promoted to the front.
    queues.get('sync-eu')![2]!.state = 'delayed';
    await q.enqueue('eu', blob('c'), 140, true);
    expect(queues.get('sync-eu')![0]).toMatchObject({
      state: 'waiting',
      data: { committedAt: 120 },
    });
  });
});
