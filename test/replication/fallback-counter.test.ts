import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';

/** The sum of a counter's samples on a node's `/metrics`; undefined when the node lacks it. */
async function counter(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  if (!text.includes(`# TYPE ${name} counter`)) return undefined;
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
}

describe('the replica fallback counter', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('is one counter, and a read served by the primary moves it', async () => {
    const img = image({ layers: 1 });
    await new RegistryClient(c.primary.url).pushImage('fb/app', 'v1', img.blobs, img.manifest);
    const replica = c.replicas[0]!.url;
    // No workers run: the replica has nothing yet, so this read falls back to the primary.
    expect(await counter(replica, 'meridian_replication_fallbacks_total')).toBeUndefined();
    const before = await counter(replica, 'meridian_replica_fallbacks_total');
    expect(before).toBeDefined();
    const r = await new RegistryClient(replica).get(`/v2/fb/app/blobs/${img.layers[0]!.digest}`);
    expect(r.status).toBe(200);
    expect(await counter(replica, 'meridian_replica_fallbacks_total')).toBe(before! + 1);
  });
});
