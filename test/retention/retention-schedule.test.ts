import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import {
  attachUntaggedRetention,
  compileRule,
  RetentionService,
  startRetentionSchedule,
  UntaggedRetention,
} from '@meridian/lifecycle';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { purgeTarget } from '../../packages/cli/src/gc-wiring';
import { pushImage, randomBlob } from '../gc/gc-helpers';
import { startRedis, type TestRedis } from '../helpers/redis';
import { waitFor } from '../helpers/wait';

/** Retention's BullMQ job scheduler on a real redis-server: runs come by themselves, one at a time. */
describe('retention schedule', () => {
  let redis: TestRedis;
  let client: Redis;
  let dir: string;
  let store: ObjectStore;
  let reg: Registry;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-retention-schedule-'));
    store = await openStore(dir);
    reg = new Registry({ store, cache: { ttlMs: 0 } });
  });
  afterEach(async () => {
    await reg.events.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs every interval: a rule's first scheduled run only plans; once approved, the next removes", async () => {
    for (const t of ['a', 'b', 'c', 'd'])
      await pushImage(reg, 'sched', t, randomBlob(), [randomBlob()]);
    const layout = new RepositoryLayout(store);
    const untagged = new UntaggedRetention(store);
    await untagged.setPolicy({ enabled: true, days: 0 });
    const detach = await attachUntaggedRetention(reg.events, untagged);
    const service = new RetentionService({
      store,
      layout,
      target: purgeTarget(reg, layout),
      rules: [compileRule({ name: 'keep3', repositories: 'sched', keep: 3 })],
      untagged,
    });
    const schedule = await startRetentionSchedule({
      redis: client,
      bullPrefix: `r${Math.random().toString(36).slice(2, 8)}`,
      region: 'eastus',
      service,
      intervalSeconds: 1,
      log: pino({ level: 'silent' }),
    });
    try {
      // Scheduled runs happen; the unapproved rule's plan is recorded, nothing removed.
      await waitFor(async () => {
        const s = (await service.status()).rules[0]!.state;
        return s.lastRun?.stopped !== undefined && s.lastRun.totals.tags === 1;
      }, 'a scheduled first run that stopped');
      expect((await layout.listTags('sched')).sort()).toEqual(['a', 'b', 'c', 'd']);
      await service.approve('keep3', 'owner');
      await waitFor(
        async () => (await layout.listTags('sched')).length === 3,
        'the oldest tag removed by a scheduled run',
      );
      expect((await layout.listTags('sched')).sort()).toEqual(['b', 'c', 'd']);
      // The policy (days 0) then takes the manifest the removed tag left, on a later run.
      await waitFor(
        async () => (await layout.listRevisions('sched')).length === 3,
        'the untagged manifest removed by a scheduled run',
      );
    } finally {
      await schedule.close();
      await detach();
    }
  });
});
