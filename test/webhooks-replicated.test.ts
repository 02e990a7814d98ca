/**
 * Webhooks and regions (issue 14): a regional webhook fires once its region serves the image,
 * and `replicated` fires once, after the last region, with each region's time.
 */
import { RegistryClient } from './helpers/http';
import { startCluster, type TestCluster } from './helpers/cluster';
import { image } from './helpers/images';
import { waitFor } from './helpers/wait';
import { WebhookReceiver } from './helpers/webhook-receiver';

const HOOKS = '/meridian/v1/admin/webhooks';

describe('webhooks across regions', () => {
  let c: TestCluster;
  let receiver: WebhookReceiver;

  const create = async (body: Record<string, unknown>) => {
    const res = await fetch(`${c.primary.url}${HOOKS}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ url: receiver.url, ...body }),
    });
    expect(res.status).toBe(201);
  };
  const regionState = async (repo: string, ref: string) => {
    const res = await fetch(
      `${c.primary.url}/meridian/v1/replication/status?repository=${repo}&reference=${ref}`,
    );
    const { regions } = (await res.json()) as { regions: { region: string; state: string }[] };
    return Object.fromEntries(regions.map((r) => [r.region, r.state]));
  };

  beforeAll(async () => {
    c = await startCluster({
      regions: ['eastus', 'westeurope'],
      webhooks: { allowPrivateTargets: ['loopback'], retryBaseMs: 200 },
    });
    receiver = await new WebhookReceiver().start();
  });
  afterAll(async () => {
    await receiver?.close();
    await c?.close();
  });

  it('a westeurope webhook waits for westeurope; replicated waits for every region', async () => {
    await create({ name: 'west', actions: ['push'], location: 'westeurope' });
    await create({ name: 'east', actions: ['push'] });
    await create({ name: 'everywhere', actions: ['replicated'], format: 'cloudevents' });
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('geo/app', 'v1', img.blobs, img.manifest);

    // No worker runs yet: the global webhook fires, the regional and replicated ones wait.
    await waitFor(async () => receiver.received.length === 1, 'the global push');
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.headers['webhook-id']).toMatch(/^east-/);
    expect((await regionState('geo/app', 'v1')).westeurope).not.toBe('replicated');

    await c.startWorkers();
    await waitFor(async () => receiver.received.length >= 3, 'the regional and replicated events');
    expect((await regionState('geo/app', 'v1')).westeurope).toBe('replicated');
    const west = receiver.received.find((r) =>
      String(r.headers['webhook-id']).startsWith('west-'),
    )!;
    expect(west.json).toMatchObject({
      action: 'push',
      target: { repository: 'geo/app', tag: 'v1', digest: img.manifest.digest },
    });
    const everywhere = receiver.received.filter((r) =>
      String(r.headers['webhook-id']).startsWith('everywhere-'),
    );
    expect(everywhere).toHaveLength(1);
    expect(everywhere[0]!.headers['content-type']).toBe('application/cloudevents+json');
    const ce = everywhere[0]!.json as {
      type: string;
      subject: string;
      data: { regions: { region: string; replicatedAt: string | null }[] };
    };
    expect(ce.type).toBe('io.meridian.registry.replicated');
    expect(ce.subject).toBe('geo/app:v1');
    expect(ce.data.regions.map((r) => r.region).sort()).toEqual(['eastus', 'westeurope']);
    for (const r of ce.data.regions) expect(Date.parse(r.replicatedAt ?? '')).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.received).toHaveLength(3);
  });
});
