/**
 * Replication status while Redis hangs (SIGSTOP: its connections stay open and nothing is
 * answered). The backlog lives in Redis, so a node cannot know it then; it must say so — the
 * regions API (what the dashboard polls) answers with the lag unknown instead of never, an
 * object's status is a 503 saying why (pending or missing cannot be told), and
 * `/metrics` drops the lag series instead of repeating the last value it read.
 */
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

interface Region {
  region: string;
  pending: number | null;
  lagSeconds: number | null;
  queue: unknown;
}

const LAG = 'meridian_replication_oldest_pending_seconds{region="westeurope"}';

describe('replication status while Redis is frozen', () => {
  let c: TestCluster;
  let frozen = false;

  beforeAll(async () => {
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
  });
  afterAll(async () => {
    if (frozen) c.redis.process.kill('SIGCONT');
    await c?.close();
  });

  /** westeurope as a node of `url` reports it, bounded so a hang fails here. */
  async function west(url: string): Promise<Region> {
    const res = await fetch(`${url}/meridian/v1/replication/regions`, {
      signal: AbortSignal.timeout(15_000),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { regions: Region[] };
    return body.regions.find((r) => r.region === 'westeurope')!;
  }

  async function lagSeries(url: string): Promise<string | undefined> {
    const text = await (await fetch(`${url}/metrics`)).text();
    return text.split('\n').find((l) => l.startsWith(`${LAG} `));
  }

  it('answers with the lag unknown, and drops the lag series, until Redis answers again', async () => {
    // No workers: the push stays pending in westeurope.
    const img = image();
    await new RegistryClient(c.primary.url).pushImage(
      'frozen/status',
      'v1',
      img.blobs,
      img.manifest,
    );
    for (const r of c.regions)
      await waitFor(async () => ((await west(r.url)).pending ?? 0) > 0, `pending on ${r.name}`);
    for (const r of c.regions) await waitFor(() => lagSeries(r.url), `the lag series on ${r.name}`);

    c.redis.process.kill('SIGSTOP');
    frozen = true;
    for (const r of c.regions) {
      // An object's status: whether westeurope's copy is pending is unknown, and said so.
      const res = await fetch(
        `${r.url}/meridian/v1/replication/status?repository=frozen/status&reference=v1`,
        { signal: AbortSignal.timeout(15_000) },
      );
      expect(res.status).toBe(503);
      const body = (await res.json()) as { errors: { code: string; message: string }[] };
      expect(body.errors[0]?.code).toBe('UNAVAILABLE');
      expect(body.errors[0]?.message).toMatch(/^redis: /);
      expect(await west(r.url)).toMatchObject({ pending: null, lagSeconds: null, queue: null });
      await waitFor(
        async () => (await lagSeries(r.url)) === undefined,
        `${r.name} to stop reporting a lag it cannot read`,
      );
    }

    c.redis.process.kill('SIGCONT');
    frozen = false;
    for (const r of c.regions) {
      await waitFor(async () => ((await west(r.url)).pending ?? 0) > 0, `pending on ${r.name}`);
      await waitFor(() => lagSeries(r.url), `the lag series back on ${r.name}`);
    }
  });
});
