/**
 * Locks in a three-region cluster (ADR 0015): a lock set on the primary is enforced by every
 * replica from its own storage once replicated; locks change only on the primary; a burst of
 * lock/unlock changes and a stale copy applied out of order never leave a region with an older
 * lock than the primary's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RegionSync } from '@meridian/replication';
import { Layout, RepositoryLayout, openStore, type LockTarget } from '@meridian/storage';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { expectOciError, ociErrors, RegistryClient, type HttpResponse } from '../helpers/http';
import { image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

function setLock(url: string, body: Record<string, unknown>): Promise<HttpResponse> {
  return new RegistryClient(url).put('/meridian/v1/admin/locks', {
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' },
  });
}

async function lock(c: TestCluster, body: Record<string, unknown>): Promise<{ seq: number }> {
  const r = await setLock(c.primary.url, body);
  expect(r.status).toBe(200);
  return r.json<{ seq: number }>();
}

interface LockView {
  seq?: number;
  attributes: { readEnabled: boolean; writeEnabled: boolean };
}

/** The lock of `repo:tag` as the region at `url` holds it. */
async function lockIn(url: string, repo: string, tag: string): Promise<LockView> {
  const r = await new RegistryClient(url).get('/meridian/v1/admin/locks', {
    query: { repository: repo, tag },
  });
  expect(r.status).toBe(200);
  return r.json<LockView>();
}

describe('locks across regions', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(async () => {
    await c?.close();
  });

  it('a lock set on the primary is enforced by every replica, from its own copy', async () => {
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('geo/app', 'v1', img.blobs, img.manifest);
    await new RegistryClient(c.primary.url).pushImage('geo/app', 'v2', img.blobs, img.manifest);
    await c.startWorkers();
    const { seq } = await lock(c, {
      repository: 'geo/app',
      tag: 'v1',
      readEnabled: false,
      listEnabled: false,
      writeEnabled: false,
    });
    for (const r of c.replicas) {
      await waitFor(async () => (await lockIn(r.url, 'geo/app', 'v1')).seq === seq, r.name);
      // The record is in the region's storage, under the same key as on the primary.
      const store = await openStore(r.storage);
      const rec = await new RepositoryLayout(store).readLock('geo/app', {
        scope: 'tag',
        tag: 'v1',
      });
      await store.close();
      expect(rec).toMatchObject({ seq, readEnabled: false });

      const client = new RegistryClient(r.url);
      await waitFor(
        async () => (await client.get('/v2/geo/app/manifests/v1')).status === 403,
        r.name,
      );
      const denied = await client.get('/v2/geo/app/manifests/v1');
      expectOciError(denied, 403, 'DENIED');
      expect(ociErrors(denied)[0]!.message).toMatch(/readEnabled=false on tag v1/);
      await waitFor(
        async () =>
          JSON.stringify(
            (await client.get('/v2/geo/app/tags/list')).json<{ tags: string[] }>().tags,
          ) === '["v2"]',
        `${r.name} tag list`,
      );
      expect((await client.get('/v2/geo/app/manifests/v2')).status).toBe(200);
    }
    // Each region's copy is a sync job like any other, in the dashboard's feed.
    type Job = { kind: string; region: string; repository: string; reference: string };
    const lockJobs = async () =>
      (await new RegistryClient(c.primary.url).get('/meridian/v1/replication/recent'))
        .json<{ events: Job[] }>()
        .events.filter((j) => j.kind === 'lock' && j.repository === 'geo/app');
    const recent = await waitFor(async () => {
      const jobs = await lockJobs();
      return new Set(jobs.map((j) => j.region)).size === c.replicas.length && jobs;
    }, 'a lock job of each replica region in the feed');
    expect(recent.every((j) => j.reference === 'tag=v1')).toBe(true);
    // The primary refuses the write the lock forbids.
    const push = await new RegistryClient(c.primary.url).putManifest('geo/app', 'v1', img.manifest);
    expectOciError(push, 403, 'DENIED');
  });

  it('locks change only on the primary', async () => {
    const r = await setLock(c.replicas[0]!.url, {
      repository: 'geo/app',
      tag: 'v1',
      readEnabled: true,
    });
    expectOciError(r, 405, 'UNSUPPORTED');
    expect(ociErrors(r)[0]!.message).toContain(c.primary.url);
  });

  it('a replica that has not copied a lock yet passes on the primary refusal of a fallback read', async () => {
    await c.stopWorkers();
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('miss/app', 'v1', img.blobs, img.manifest);
    await lock(c, { repository: 'miss/app', readEnabled: false });
    const replica = new RegistryClient(c.replicas[0]!.url);
    const m = await replica.get('/v2/miss/app/manifests/v1');
    expectOciError(m, 403, 'DENIED');
    expect(ociErrors(m)[0]!.message).toMatch(/readEnabled=false on repository/);
    const b = await replica.get(`/v2/miss/app/blobs/${img.layers[0]!.digest}`);
    expectOciError(b, 403, 'DENIED');
    await c.startWorkers();
  });

  it('a lock whose sync job was lost reaches every region by the reconcile', async () => {
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('lost/app', 'v1', img.blobs, img.manifest);
    const { seq } = await lock(c, { repository: 'lost/app', tag: 'v1', deleteEnabled: false });
    for (const r of c.replicas)
      await waitFor(async () => (await lockIn(r.url, 'lost/app', 'v1')).seq === seq, r.name);
    await c.stopWorkers();
    // A newer record on the primary whose event and job are gone (as after a crash and a Redis
    // loss): only the reconcile, which workers run on start, can find it.
    const redis = new Redis(c.redis.url);
    await redis.flushall();
    redis.disconnect();
    const primary = await openStore(c.primary.storage);
    const target: LockTarget = { scope: 'tag', tag: 'v1' };
    const layout = new RepositoryLayout(primary);
    const newer = {
      ...(await layout.readLock('lost/app', target))!,
      readEnabled: false,
      seq: seq + 1,
    };
    await layout.writeLock('lost/app', target, newer);
    await primary.close();
    await c.startWorkers();
    for (const r of c.replicas) {
      await waitFor(
        async () => (await lockIn(r.url, 'lost/app', 'v1')).seq === seq + 1,
        `${r.name} after the reconcile`,
      );
      expect((await lockIn(r.url, 'lost/app', 'v1')).attributes.readEnabled).toBe(false);
    }
  });

  it('a burst of lock and unlock converges on the last change in every region', async () => {
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('race/app', 'v1', img.blobs, img.manifest);
    let last = 0;
    for (let i = 0; i < 8; i++)
      last = (await lock(c, { repository: 'race/app', tag: 'v1', readEnabled: i % 2 === 1 })).seq;
    for (const r of c.replicas) {
      await waitFor(async () => (await lockIn(r.url, 'race/app', 'v1')).seq === last, r.name);
      expect((await lockIn(r.url, 'race/app', 'v1')).attributes.readEnabled).toBe(true);
      await waitFor(
        async () =>
          (await new RegistryClient(r.url).get('/v2/race/app/manifests/v1')).status === 200,
        `${r.name} serves the unlocked tag`,
      );
    }
  });

  it('a stale copy of a lock applied after the unlock never reverts it', async () => {
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('stale/app', 'v1', img.blobs, img.manifest);
    const target: LockTarget = { scope: 'tag', tag: 'v1' };
    await c.stopWorkers();
    // Lock, and keep the primary's record as it was then: what a job that read it would write.
    await lock(c, { repository: 'stale/app', tag: 'v1', writeEnabled: false, readEnabled: false });
    const primary = await openStore(c.primary.storage);
    const lockedBytes = await primary.getBytes(Layout.lock('stale/app', target));
    const unlocked = await lock(c, {
      repository: 'stale/app',
      tag: 'v1',
      writeEnabled: true,
      readEnabled: true,
    });
    await c.startWorkers();
    for (const r of c.replicas)
      await waitFor(
        async () => (await lockIn(r.url, 'stale/app', 'v1')).seq === unlocked.seq,
        r.name,
      );
    // The late job: it read the locked record, and now applies it to every region.
    const dir = mkdtempSync(join(tmpdir(), 'meridian-stale-'));
    const stale = await openStore(dir);
    await stale.put(Layout.lock('stale/app', target), lockedBytes);
    for (const r of c.replicas) {
      const store = await openStore(r.storage);
      await new RegionSync(r.name, stale, store).syncLock('stale/app', 'tag=v1');
      expect(await new RepositoryLayout(store).readLock('stale/app', target)).toMatchObject({
        seq: unlocked.seq,
        readEnabled: true,
        writeEnabled: true,
      });
      await store.close();
      expect((await new RegistryClient(r.url).get('/v2/stale/app/manifests/v1')).status).toBe(200);
    }
    await stale.close();
    await primary.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
