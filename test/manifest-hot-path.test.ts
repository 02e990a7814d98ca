/**
 * The hot manifest read (ManifestStore.peek): a tag served from the node's cache without a
 * promise must give exactly the answer the full read gives — a moved or deleted tag is never
 * served from before the move, a lock refuses at once, HEAD has no body, every GET is counted —
 * and only the plain store may answer from its cache (a subclass such as the replica's fallback
 * decides freshness itself).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManifestStore, MetadataCache, Registry, startNodeServer } from '@meridian/registry';
import { openStore, UsageRecords, type ObjectStore } from '@meridian/storage';
import { expectOciError, RegistryClient } from './helpers/http';
import { image, MediaTypes } from './helpers/images';
import { testLogger } from './helpers/log-scan';

jest.setTimeout(60_000);

const ACCEPT = { Accept: `${MediaTypes.ociManifest}, ${MediaTypes.ociIndex}` };

describe('hot manifest reads from the cache', () => {
  let dir: string;
  let store: ObjectStore;
  let registry: Registry;
  let c: RegistryClient;
  let close: () => Promise<void>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-hot-'));
    store = await openStore(dir);
    // The default cache (mutable lookups trusted for 1 s): the hot path is on.
    registry = new Registry({ store, pulls: { flushIntervalMs: 3_600_000 } });
    const node = await startNodeServer({
      registry,
      log: testLogger(),
      listen: '127.0.0.1:0',
      purgeIntervalMs: 0,
    });
    c = new RegistryClient(node.url);
    close = () => node.close();
  });
  afterAll(async () => {
    await close?.();
    await registry?.pulls?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** GET the tag several times: the first read fills the cache, the rest are served from it. */
  async function pullTwice(repo: string, ref: string): Promise<string[]> {
    const digests: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await c.get(`/v2/${repo}/manifests/${ref}`, { headers: ACCEPT });
      expect(r.status).toBe(200);
      digests.push(String(r.header('docker-content-digest')));
    }
    return digests;
  }

  it('a tag moved, deleted or locked is never served from before the change', async () => {
    const a = image();
    const b = image();
    await c.pushImage('hot/app', 'v1', a.blobs, a.manifest);
    expect(await pullTwice('hot/app', 'v1')).toEqual(Array(3).fill(a.manifest.digest));

    await c.pushImage('hot/app', 'v1', b.blobs, b.manifest);
    expect(await pullTwice('hot/app', 'v1')).toEqual(Array(3).fill(b.manifest.digest));
    const body = await c.get('/v2/hot/app/manifests/v1', { headers: ACCEPT });
    expect(body.body.equals(b.manifest.bytes)).toBe(true);

    const lock = await c.put('/meridian/v1/admin/locks', {
      body: JSON.stringify({ repository: 'hot/app', tag: 'v1', readEnabled: false }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(lock.status).toBe(200);
    expectOciError(await c.get('/v2/hot/app/manifests/v1', { headers: ACCEPT }), 403, 'DENIED');
    const unlock = await c.put('/meridian/v1/admin/locks', {
      body: JSON.stringify({ repository: 'hot/app', tag: 'v1', readEnabled: true }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(unlock.status).toBe(200);
    expect(await pullTwice('hot/app', 'v1')).toEqual(Array(3).fill(b.manifest.digest));

    expect((await c.delete('/v2/hot/app/manifests/v1')).status).toBe(202);
    expectOciError(
      await c.get('/v2/hot/app/manifests/v1', { headers: ACCEPT }),
      404,
      'MANIFEST_UNKNOWN',
    );
    // By digest the manifest is still there (deleting a tag keeps the manifest).
    expect(await pullTwice('hot/app', b.manifest.digest)).toEqual(Array(3).fill(b.manifest.digest));
  });

  it('HEAD answers the headers without a body; an Accept that excludes the type is refused', async () => {
    const a = image();
    await c.pushImage('hot/head', 'v1', a.blobs, a.manifest);
    await pullTwice('hot/head', 'v1');
    const h = await c.request('HEAD', '/v2/hot/head/manifests/v1', { headers: ACCEPT });
    expect(h.status).toBe(200);
    expect(h.header('content-length')).toBe(String(a.manifest.bytes.length));
    expect(h.header('docker-content-digest')).toBe(a.manifest.digest);
    expect(h.body.length).toBe(0);
    const refused = await c.get('/v2/hot/head/manifests/v1', {
      headers: { Accept: MediaTypes.dockerManifest },
    });
    expectOciError(refused, 404, 'MANIFEST_UNKNOWN');
  });

  it('every GET served from the cache is counted as a pull, a HEAD is not', async () => {
    const a = image();
    await c.pushImage('hot/count', 'v1', a.blobs, a.manifest);
    await pullTwice('hot/count', 'v1'); // 3 GETs
    await c.request('HEAD', '/v2/hot/count/manifests/v1', { headers: ACCEPT });
    await registry.pulls!.flush();
    const usage = await new UsageRecords(store).read('hot/count');
    expect(usage.tags['v1']?.count).toBe(3);
    expect(usage.manifests[a.manifest.digest]?.count).toBe(3);
  });

  it('only the plain store answers from its cache', async () => {
    const cache = new MetadataCache();
    const plain = registry.manifests;
    expect(plain.peek('hot/count', 'v1', false)?.digest).toBeDefined();
    // A subclass (as the replica's fallback is) never takes the shortcut, whatever is cached.
    class Deciding extends ManifestStore {}
    const tags = registry.tags;
    const sub = new Deciding(store, tags, cache, registry.events);
    await sub.get('hot/count', 'v1', false); // fills `cache`
    expect(sub.peek('hot/count', 'v1', false)).toBeUndefined();
    // A cache that may not be trusted (another node writes the region) is not consulted either.
    cache.setExclusive(() => false);
    const shared = new ManifestStore(store, tags, cache, registry.events);
    await shared.get('hot/count', 'v1', false);
    expect(shared.peek('hot/count', 'v1', false)).toBeUndefined();
  });
});
