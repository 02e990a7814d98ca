import { Redis } from 'ioredis';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { waitFor } from '../helpers/wait';

interface Run {
  region: string;
  id: string;
  mode: string;
  finishedAt?: number;
  failedReason?: string;
}

/**
 * GC's schedules and its queued replica shares live in Redis: when Redis loses its data, every
 * region gets a full mark-and-sweep (the backstop), and the schedules are set up again.
 */
describe('GC after a Redis loss', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({
      regions: ['eastus', 'westeurope'],
      gc: {
        enabled: true,
        intervalSeconds: 86400,
        fullIntervalSeconds: 604800,
        minGraceSeconds: 0,
      },
    });
    await c.startWorkers();
  });
  afterAll(async () => {
    await c?.close();
  });

  const runs = async (): Promise<Run[]> =>
    (await new RegistryClient(c.primary.url).get('/meridian/v1/admin/gc')).json<{ runs: Run[] }>()
      .runs;

  it('runs a full collection of every region once Redis comes back empty', async () => {
    const redis = new Redis(c.redis.url);
    try {
      // Let the processes see the epoch once, then flush everything.
      await new Promise((r) => setTimeout(r, 6000));
      await redis.flushall();
    } finally {
      redis.disconnect();
    }
    await waitFor(
      async () => {
        const done = (await runs()).filter((r) => r.id.startsWith('epoch-') && r.finishedAt);
        return ['eastus', 'westeurope'].every((region) =>
          done.some((r) => r.region === region && r.mode === 'full' && !r.failedReason),
        );
      },
      'a full run of each region after the flush',
      60_000,
    );
  });
});
