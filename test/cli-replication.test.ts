import { existsSync } from 'node:fs';
import { ReplicationQueues, reconcileHistory } from '@meridian/replication';
import { CLI, meridian } from './helpers/cli';
import { startCluster, type TestCluster } from './helpers/cluster';
import { waitFor } from './helpers/wait';

const OWNER = 'cli-replication-owner-pw';

describe('meridian replication (a client of the node API)', () => {
  let c: TestCluster;
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
    c = await startCluster({
      regions: ['eastus', 'westeurope'],
      auth: {},
      ownerPassword: OWNER,
    });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('status asks a node over HTTP with the credentials given', async () => {
    const r = await meridian(
      [
        'replication',
        'status',
        '--url',
        c.replicas[0]!.url,
        '--repository',
        'demo/none',
        '--reference',
        'v1',
      ],
      { MERIDIAN_PASSWORD: OWNER },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('demo/none:v1');
    expect(r.stdout).toMatch(/^eastus\s+missing/m);
    expect(r.stdout).toMatch(/^westeurope\s+missing/m);
  });

  it('status without credentials is refused by the node, and says what is needed', async () => {
    const r = await meridian([
      'replication',
      'status',
      '--url',
      c.primary.url,
      '--repository',
      'demo/none',
      '--reference',
      'v1',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('401');
    expect(r.stderr).toContain('MERIDIAN_PASSWORD');
  });

  it('status without a target is an error, not an empty table', async () => {
    const r = await meridian([
      'replication',
      'status',
      '--url',
      c.primary.url,
      '--password',
      OWNER,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('--repository NAME --reference TAG|DIGEST');
  });

  it('regions lists every region from a node', async () => {
    const r = await meridian([
      'replication',
      'regions',
      '--url',
      c.primary.url,
      '--password',
      OWNER,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^eastus\s+primary\s+yes/m);
    expect(r.stdout).toMatch(/^westeurope\s+replica\s+yes/m);
  });

  it('reconcile asks a node to queue a run, and the workers run it', async () => {
    await c.startWorkers();
    const queues = new ReplicationQueues({
      redisUrl: c.redis.url,
      prefix: c.config.replication.prefix,
    });
    try {
      const r = await meridian(
        ['replication', 'reconcile', '--url', c.replicas[0]!.url, '--region', 'westeurope'],
        { MERIDIAN_PASSWORD: OWNER },
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      // It waits for the run and shows what it found: here, nothing (the regions are empty).
      expect(r.stdout).toMatch(
        /^REGION\s+JOB\s+STATE\s+REPOSITORIES\s+TAGS\s+MANIFESTS\s+BLOBS\s+REFERRERS\s+LOCKS$/m,
      );
      expect(r.stdout).toMatch(/^westeurope\s+\S+\s+completed\s+0\s+0\s+0\s+0\s+0\s+0$/m);
      expect(r.stdout).toContain('nothing to do: every region holds what the primary holds');
      const job = /^westeurope\s+(\S+)/m.exec(r.stdout)?.[1];
      expect(job).toBeDefined();
      await waitFor(
        async () =>
          (await reconcileHistory(queues, 'westeurope')).some(
            (x) => x.id === job && x.reason === 'manual' && !x.failedReason,
          ),
        'the queued reconcile run by the workers',
      );
      const bad = await meridian(
        ['replication', 'reconcile', '--url', c.primary.url, '--region', 'eastus'],
        { MERIDIAN_PASSWORD: OWNER },
      );
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('not a replica region: eastus');
    } finally {
      await queues.close();
      await c.stopWorkers();
    }
  });
});
