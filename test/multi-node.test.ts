/**
 * Several nodes per region (issue 17, ADR 0024): two nodes of the primary region share its
 * storage and Redis. A tag moved through one is never served stale by the other, an upload can
 * hop between them, and garbage collection — whose lock is per process — pauses while the
 * region has more than one node.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../packages/cli/src/serve';
import type { RunningNode } from '@meridian/registry';
import { startCluster, type TestCluster } from './helpers/cluster';
import { RegistryClient } from './helpers/http';
import { image, randomBlob } from './helpers/images';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const ACCEPT = {
  Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
};

/** `meridian_region_nodes{region}` as a node reports it. */
async function regionNodes(url: string, region: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`meridian_region_nodes{region="${region}"}`));
  return line ? Number(line.split(' ').pop()) : undefined;
}

describe('several nodes in one region', () => {
  let c: TestCluster;
  let second: RunningNode | undefined;
  let a: RegistryClient;
  let b: RegistryClient;

  const startSecond = async () => {
    second = await serve({
      ...c.config,
      region: c.primary.name,
      listen: '127.0.0.1:0',
      // Each node keeps its own event journal (one process per journal).
      events: { ...c.config.events, journalDir: mkdtempSync(join(tmpdir(), 'meridian-node2-')) },
    });
    b = new RegistryClient(second.url);
  };

  beforeAll(async () => {
    c = await startCluster({ regions: ['eastus'], gc: { enabled: false, minGraceSeconds: 0 } });
    a = new RegistryClient(c.primary.url);
    await startSecond();
  });
  afterAll(async () => {
    await second?.close();
    await c?.close();
  });

  it('both nodes know the region has two nodes', async () => {
    await waitFor(
      async () => (await regionNodes(c.primary.url, 'eastus')) === 2,
      'the first node to count two nodes',
    );
  });

  it('never serves a tag moved through the other node stale', async () => {
    const imgs = Array.from({ length: 4 }, () => image());
    for (const img of imgs)
      await a.pushImage('multi/app', img.manifest.digest, img.blobs, img.manifest);
    const stale: string[] = [];
    for (let i = 0; i < 60; i++) {
      const img = imgs[i % imgs.length]!;
      // Read through A first, so a node that caches tags would hold the previous one.
      await a.get('/v2/multi/app/manifests/latest', { headers: ACCEPT });
      const put = await b.putManifest('multi/app', 'latest', img.manifest);
      expect(put.status).toBe(201);
      const got = await a.get('/v2/multi/app/manifests/latest', { headers: ACCEPT });
      expect(got.status).toBe(200);
      if (got.header('docker-content-digest') !== img.manifest.digest) stale.push(`move ${i}`);
      const list = (await a.get('/v2/multi/app/tags/list')).json<{ tags: string[] }>().tags;
      if (!list.includes('latest')) stale.push(`list ${i}`);
    }
    // A delete through B is seen through A at once as well.
    expect((await b.delete('/v2/multi/app/manifests/latest')).status).toBe(202);
    expect((await a.get('/v2/multi/app/manifests/latest', { headers: ACCEPT })).status).toBe(404);
    expect(stale).toEqual([]);
  });

  it('completes an upload whose POST, PATCH and PUT land on different nodes', async () => {
    const blob = randomBlob(3 * 1024 * 1024);
    const start = await a.startUpload('multi/hop');
    expect(start.status).toBe(202);
    const half = Math.floor(blob.bytes.length / 2);
    const patch = await b.patch(start.header('location')!, {
      body: blob.bytes.subarray(0, half),
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `0-${half - 1}`,
      },
    });
    expect(patch.status).toBe(202);
    const loc = patch.header('location')!;
    const put = await a.put(`${loc}${loc.includes('?') ? '&' : '?'}digest=${blob.digest}`, {
      body: blob.bytes.subarray(half),
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${half}-${blob.bytes.length - 1}`,
      },
    });
    expect(put.status).toBe(201);
    const got = await b.get(`/v2/multi/hop/blobs/${blob.digest}`);
    expect(got.status).toBe(200);
    expect(Buffer.compare(got.body, blob.bytes)).toBe(0);
  });

  it('pauses garbage collection while the region has two nodes, and runs it once alone', async () => {
    const run = () =>
      a.post('/meridian/v1/admin/gc', {
        body: JSON.stringify({ mode: 'full', graceSeconds: 0 }),
        headers: { 'Content-Type': 'application/json' },
      });
    // Something to collect: a layer no manifest references any more.
    const img = image();
    await a.pushImage('multi/gc', 'v1', img.blobs, img.manifest);
    expect((await a.delete(`/v2/multi/gc/manifests/${img.manifest.digest}`)).status).toBe(202);
    const refused = await run();
    expect(refused.body.toString()).toMatch(
      /garbage collection paused: this region has several nodes/,
    );
    expect((await b.head(`/v2/multi/gc/blobs/${img.blobs[0]!.digest}`)).status).toBe(200);

    await second!.close();
    second = undefined;
    await waitFor(
      async () => (await regionNodes(c.primary.url, 'eastus')) === 1,
      'the first node to count itself alone',
    );
    const ran = await run();
    expect(ran.status).toBe(200);
    expect(ran.json<{ blobsDeleted: number }>().blobsDeleted).toBeGreaterThan(0);
    expect((await a.head(`/v2/multi/gc/blobs/${img.blobs[0]!.digest}`)).status).toBe(404);
  });
});
