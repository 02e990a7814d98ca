/**
 * `/readyz` is what the gateway's health checks read: with Redis down it must answer 503 and say
 * why within seconds (issue 10 §10) — it used to wait for Redis forever, so the region was only
 * ever "unreachable", never "unready because of Redis".
 */
import { startCluster, type TestCluster } from '../helpers/cluster';

describe('readiness while Redis is down', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('answers /readyz 200 with Redis up, and 503 naming Redis quickly when it is down', async () => {
    for (const r of c.regions) expect((await fetch(`${r.url}/readyz`)).status).toBe(200);
    await c.redis.stop();
    for (const r of c.regions) {
      // Generous bound: the old behaviour was no answer at all.
      const res = await fetch(`${r.url}/readyz`, { signal: AbortSignal.timeout(15_000) });
      expect(res.status).toBe(503);
      const body = (await res.json()) as { status: string; error: string };
      expect(body.status).toBe('unavailable');
      expect(body.error).toMatch(/^redis: /);
    }
  });
});
