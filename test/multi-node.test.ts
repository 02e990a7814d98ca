/**
 * Several nodes per region (issue 17, ADR 0024): two nodes of the primary region share its
 * storage and Redis. A tag moved through one is never served stale by the other, an upload can
 * hop between them, and garbage collection — whose lock is per process — is kept off what the
 * other node references through a fence in the store.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../packages/cli/src/serve';
import type { RunningNode } from '@meridian/registry';
import { parseDigest } from '@meridian/oci';
import { Layout, exists, openStore, type ObjectStore } from '@meridian/storage';
import { startCluster, type TestCluster } from './helpers/cluster';
import { RegistryClient } from './helpers/http';
import { image, randomBlob } from './helpers/images';
import { waitFor } from './helpers/wait';
import { ageAll } from './gc/gc-helpers';

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
  let store: ObjectStore;

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
    store = await openStore(c.primary.storage);
    await startSecond();
  });
  afterAll(async () => {
    await second?.close();
    await store?.close();
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

  it('collects garbage with two nodes, sparing what the other node referenced lately', async () => {
    const run = async () => {
      const r = await a.post('/meridian/v1/admin/gc', {
        body: JSON.stringify({ mode: 'full', graceSeconds: 0 }),
        headers: { 'Content-Type': 'application/json' },
      });
      expect(r.status).toBe(200);
      return r.json<{ blobsDeleted: number; conflicts: number }>();
    };
    // Pushed through B, then deleted: B's manifest PUT stamped its blobs in the store.
    const img = image();
    await b.pushImage('multi/gc', 'v1', img.blobs, img.manifest);
    expect((await b.delete(`/v2/multi/gc/manifests/${img.manifest.digest}`)).status).toBe(202);
    const layer = `/v2/multi/gc/blobs/${img.blobs[0]!.digest}`;
    // The collector on A cannot see B's in-process locks: the fresh stamps keep it off.
    const fresh = await run();
    expect(fresh.conflicts).toBeGreaterThan(0);
    expect(await exists(store, Layout.blobData(parseDigest(img.blobs[0]!.digest)))).toBe(true);
    // Minutes later (aged here), nothing contests it: freed, and gone through either node.
    await ageAll(c.primary.storage, 3_600_000);
    const later = await run();
    expect(later.blobsDeleted).toBeGreaterThan(0);
    expect(await exists(store, Layout.blobData(parseDigest(img.blobs[0]!.digest)))).toBe(false);
    expect((await b.head(layer)).status).toBe(404);
  });

  it('counts one node again once the other leaves', async () => {
    await second!.close();
    second = undefined;
    await waitFor(
      async () => (await regionNodes(c.primary.url, 'eastus')) === 1,
      'the first node to count itself alone',
    );
  });
});
