import { HEALTH_BODY } from '@meridian/observability';
import { runGateway, type RunningGateway } from '../packages/cli/src/gateway-cmd';
import { runWorkers, type WorkerRun } from '../packages/cli/src/worker';
import { startCluster, type TestCluster } from './helpers/cluster';

/**
 * Nodes, workers and the gateway answer /metrics and /healthz through one module
 * (@meridian/observability), so they answer alike.
 */
describe('one /metrics + /healthz for nodes, workers and the gateway', () => {
  let c: TestCluster;
  let gw: RunningGateway;
  let w: WorkerRun;
  let urls: { name: string; url: string }[];
  beforeAll(async () => {
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
    gw = await runGateway({
      ...c.config,
      gateway: { ...c.config.gateway, listen: ['127.0.0.1:0'] },
    });
    w = await runWorkers(
      { ...c.config, region: 'eastus', worker: { metricsListen: '127.0.0.1:0' } },
      [],
    );
    urls = [
      { name: 'node', url: c.primary.url },
      { name: 'gateway', url: gw.urls[0]! },
      { name: 'worker', url: w.metricsUrl! },
    ];
  });
  afterAll(async () => {
    await w?.close();
    await gw?.close();
    await c?.close();
  });

  it('serves the process metrics and health on GET', async () => {
    for (const { url } of urls) {
      const m = await fetch(`${url}/metrics`);
      expect(m.status).toBe(200);
      expect(m.headers.get('content-type')).toContain('text/plain');
      expect(await m.text()).toContain('# TYPE meridian_');
      const h = await fetch(`${url}/healthz`);
      expect(h.status).toBe(200);
      expect(h.headers.get('content-type')).toContain('application/json');
      expect(await h.text()).toBe(HEALTH_BODY);
    }
  });

  it('refuses other methods the same way in all three', async () => {
    for (const { name, url } of urls) {
      for (const path of ['/metrics', '/healthz']) {
        const r = await fetch(`${url}${path}`, { method: 'POST' });
        expect({ name, path, status: r.status, allow: r.headers.get('allow') }).toEqual({
          name,
          path,
          status: 405,
          allow: 'GET, HEAD',
        });
        expect(((await r.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe(
          'UNSUPPORTED',
        );
      }
    }
  });
});
