/**
 * `/acr/v1` in a cluster (ADR 0020): a tag or manifest shows where it is replicated; a replica
 * serves reads from its own copy and refuses writes naming the primary; a lock changed through
 * `PATCH` on the primary reaches the replica's `/acr/v1` like any lock.
 */
import { startCluster, type TestCluster } from '../helpers/cluster';
import { expectOciError, ociErrors, RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

interface Tag {
  name: string;
  digest: string;
  changeableAttributes: Record<string, boolean>;
  replication?: { region: string; state: string }[];
}

describe('/acr/v1 across regions', () => {
  let c: TestCluster;
  let primary: RegistryClient;
  let replica: RegistryClient;
  const img = image();

  beforeAll(async () => {
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
    await c.startWorkers();
    primary = new RegistryClient(c.primary.url);
    replica = new RegistryClient(c.replicas[0]!.url);
    await primary.pushImage('shop/api', 'v1', img.blobs, img.manifest);
  });
  afterAll(async () => {
    await c?.close();
  });

  test('a tag shows its state in every region; a replica answers from its own copy', async () => {
    const tag = await waitFor(async () => {
      const r = await primary.get('/acr/v1/shop/api/_tags/v1');
      const t = r.json<{ tag: Tag }>().tag;
      return t.replication?.every((x) => x.state === 'replicated') ? t : undefined;
    }, 'v1 replicated to every region');
    expect(tag.replication!.map((x) => x.region).sort()).toEqual(['eastus', 'westeurope']);
    const there = await replica.get('/acr/v1/shop/api/_manifests');
    expect(there.status).toBe(200);
    expect(
      there.json<{ manifests: { digest: string; tags: string[] }[] }>().manifests,
    ).toMatchObject([{ digest: img.manifest.digest, tags: ['v1'] }]);
  });

  test('writes on a replica are refused with the primary named; a PATCH on the primary reaches it', async () => {
    const body = {
      headers: { 'Content-Type': 'application/json' },
      body: '{"writeEnabled":false}',
    };
    const patch = await replica.patch('/acr/v1/shop/api/_tags/v1', body);
    expectOciError(patch, 405, 'UNSUPPORTED');
    expect(ociErrors(patch)[0]!.message).toContain(c.primary.url);
    const del = await replica.delete('/acr/v1/shop/api/_tags/v1');
    expectOciError(del, 405, 'UNSUPPORTED');
    expect(ociErrors(del)[0]!.message).toContain(c.primary.url);
    // Nothing changed anywhere.
    expect((await primary.get('/v2/shop/api/manifests/v1')).status).toBe(200);

    expect((await primary.patch('/acr/v1/shop/api/_tags/v1', body)).status).toBe(200);
    await waitFor(async () => {
      const t = (await replica.get('/acr/v1/shop/api/_tags/v1')).json<{ tag: Tag }>().tag;
      return t.changeableAttributes.writeEnabled === false;
    }, 'the lock in westeurope');
    const other = image();
    await primary.pushImage('shop/api', 'other', other.blobs, other.manifest);
    expectOciError(await primary.putManifest('shop/api', 'v1', other.manifest), 403, 'DENIED');
  });
});
