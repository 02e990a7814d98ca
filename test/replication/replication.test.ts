import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { register } from 'prom-client';
import { parseDigest } from '@meridian/oci';
import { Layout, exists, listAllKeys, openStore } from '@meridian/storage';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { RegistryClient } from '../helpers/http';
import { image, imageManifest, configBlob, randomBlob, type Image } from '../helpers/images';
import type { StorageKind } from '../helpers/node';
import { incompleteUploads } from '../helpers/s3-env';
import { waitFor } from '../helpers/wait';

const ACCEPT = {
  Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
};

async function push(c: TestCluster, repo: string, tag: string, img: Image): Promise<void> {
  await new RegistryClient(c.primary.url).pushImage(repo, tag, img.blobs, img.manifest);
}

/** Pulls an image by tag from `url` and checks every byte against what was pushed. */
async function pullsIdentical(
  url: string,
  repo: string,
  tag: string,
  img: Image,
): Promise<boolean> {
  const client = new RegistryClient(url);
  const m = await client.get(`/v2/${repo}/manifests/${tag}`, { headers: ACCEPT });
  if (m.status !== 200 || !m.body.equals(img.manifest.bytes)) return false;
  for (const b of img.blobs) {
    const r = await client.get(`/v2/${repo}/blobs/${b.digest}`);
    if (
      r.status !== 200 ||
      `sha256:${createHash('sha256').update(r.body).digest('hex')}` !== b.digest
    )
      return false;
  }
  return true;
}

/** Waits until the status API (asked at the primary) reports `repo:ref` replicated in `region`. */
async function waitReplicated(
  c: TestCluster,
  repo: string,
  ref: string,
  region: string,
  what?: string,
): Promise<void> {
  await waitFor(
    async () => {
      const res = await new RegistryClient(c.primary.url).get('/meridian/v1/replication/status', {
        query: { repository: repo, reference: ref },
      });
      return (
        res
          .json<{ regions: { region: string; state: string }[] }>()
          .regions.find((x) => x.region === region)?.state === 'replicated'
      );
    },
    what ?? `${repo}:${ref} replicated to ${region}`,
  );
}

/**
 * Whether a copy into the region stored at `location` is under way, its bytes not yet visible
 * under any key. fs: a temp file above 1 MiB in `<root>/.tmp` (the driver renames temp files
 * into place when done). S3: a multipart upload with a part uploaded, anywhere in the bucket
 * (today `putVerified`'s upload of a staging key).
 */
async function copyInProgress(storage: StorageKind, location: string): Promise<boolean> {
  if (storage === 's3') {
    return (await incompleteUploads(location, '')).some((u) => u.parts > 0);
  }
  const tmp = join(location, '.tmp');
  return existsSync(tmp) && readdirSync(tmp).some((f) => statSync(join(tmp, f)).size > 1024 * 1024);
}

/** What a killed write left behind: temp file bytes on fs, incomplete multipart parts on S3. */
async function leftovers(storage: StorageKind, location: string): Promise<number> {
  if (storage === 's3')
    return (await incompleteUploads(location, '')).reduce((a, u) => a + u.parts, 0);
  const tmp = join(location, '.tmp');
  if (!existsSync(tmp)) return 0;
  return readdirSync(tmp).reduce((a, f) => a + statSync(join(tmp, f)).size, 0);
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await register.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) =>
      Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l),
    )
    .reduce((a, v) => a + v.value, 0);
}

describe.each(['fs', 's3'] as const)('geo-replication on %s', (storage) => {
  let c: TestCluster;
  beforeAll(async () => {
    // On S3, westeurope's bucket is reached through another endpoint name, so copies into it
    // stream through the digest check into staging, while southeastasia's stay server-side:
    // every test below runs both paths.
    c = await startCluster({
      storage,
      ...(storage === 's3' ? { streamedRegions: ['westeurope'] } : {}),
    });
  });
  afterAll(async () => {
    await c?.close();
  });
  afterEach(async () => {
    await c.stopWorkers();
  });

  it('copies a pushed image to every replica, byte for byte, and reports it replicated', async () => {
    await c.startWorkers();
    const img = image({ layers: 3, layerSize: 4096 });
    await push(c, 'team/app', 'v1', img);
    for (const r of c.replicas) {
      await waitReplicated(c, 'team/app', 'v1', r.name);
      // Served from the region's own storage: its files are there.
      expect(await pullsIdentical(r.url, 'team/app', 'v1', img)).toBe(true);
    }
    const status = await new RegistryClient(c.replicas[0]!.url).get(
      '/meridian/v1/replication/status',
      {
        query: { repository: 'team/app', reference: 'v1' },
      },
    );
    const body = status.json<{
      regions: { region: string; state: string; digest: string; lagSeconds: number }[];
    }>();
    expect(body.regions.map((r) => r.region)).toEqual(c.regions.map((r) => r.name));
    for (const r of body.regions) {
      expect(r.state).toBe('replicated');
      expect(r.digest).toBe(img.manifest.digest);
      expect(r.lagSeconds).toBeGreaterThanOrEqual(0);
    }
  });

  it('serves pulls from replicas while workers are stopped, and never a stale tag', async () => {
    const first = image({ layers: 2, layerSize: 2048 });
    await push(c, 'fallback/app', 'latest', first);
    for (const r of c.replicas)
      expect(await pullsIdentical(r.url, 'fallback/app', 'latest', first)).toBe(true);
    const second = image({ layers: 2, layerSize: 2048 });
    await push(c, 'fallback/app', 'latest', second);
    for (const r of c.replicas) {
      const res = await new RegistryClient(r.url).head('/v2/fallback/app/manifests/latest', {
        headers: ACCEPT,
      });
      expect(res.header('docker-content-digest')).toBe(second.manifest.digest);
      expect(await pullsIdentical(r.url, 'fallback/app', 'latest', second)).toBe(true);
    }
    // The misses were queued at the front; once workers run, the region converges.
    await c.startWorkers();
    for (const r of c.replicas) {
      await waitReplicated(c, 'fallback/app', 'latest', r.name);
    }
  });

  it('refuses writes on a replica with UNSUPPORTED naming the primary', async () => {
    const r = c.replicas[0]!;
    const res = await new RegistryClient(r.url).post('/v2/x/blobs/uploads/');
    expect(res.status).toBe(405);
    const err = res.json<{ errors: { code: string; message: string }[] }>().errors[0]!;
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain(c.primary.url);
    // A 405 says what the target still accepts here (RFC 9110 §15.5.6): the reads.
    const put = await new RegistryClient(r.url).put('/v2/x/manifests/v1');
    expect([put.status, put.headers.allow]).toEqual([405, 'GET, HEAD']);
  });

  it('propagates deletes to every replica', async () => {
    await c.startWorkers();
    const img = image({ layers: 1 });
    await push(c, 'del/app', 'v1', img);
    for (const r of c.replicas)
      await waitFor(() => pullsIdentical(r.url, 'del/app', 'v1', img), `del/app in ${r.name}`);
    const del = await new RegistryClient(c.primary.url).delete(
      `/v2/del/app/manifests/${img.manifest.digest}`,
    );
    expect(del.status).toBe(202);
    for (const r of c.replicas) {
      await waitFor(async () => {
        const res = await new RegistryClient(r.url).get(
          `/v2/del/app/manifests/${img.manifest.digest}`,
          { headers: ACCEPT },
        );
        return res.status === 404;
      }, `manifest gone from ${r.name}`);
      const tag = await new RegistryClient(r.url).get('/v2/del/app/manifests/v1', {
        headers: ACCEPT,
      });
      expect(tag.status).toBe(404);
    }
  });

  it('copies a base shared by twenty images once per region', async () => {
    const base = randomBlob(256 * 1024);
    const before = await Promise.all(
      c.replicas.map((r) => metric('meridian_replication_bytes_copied_total', { region: r.name })),
    );
    const images: Image[] = Array.from({ length: 20 }, () => {
      const config = configBlob();
      const top = randomBlob(1024);
      const manifest = imageManifest({ config, layers: [base, top] });
      return { config, layers: [base, top], manifest, blobs: [config, base, top] };
    });
    for (const [i, img] of images.entries()) await push(c, `shared/app${i}`, 'v1', img);
    await c.startWorkers();
    for (const r of c.replicas)
      for (const i of images.keys()) await waitReplicated(c, `shared/app${i}`, 'v1', r.name);
    for (const [i, r] of c.replicas.entries()) {
      const copied =
        (await metric('meridian_replication_bytes_copied_total', { region: r.name })) - before[i]!;
      const unique = images.reduce(
        (a, img) => a + img.config.size + img.layers[1]!.size + img.manifest.size,
        0,
      );
      // Every unique byte once, the base once: not twenty times.
      expect(copied).toBe(unique + base.size);
    }
  });

  it('converges after Redis loses every queued job (FLUSHALL)', async () => {
    const img = image({ layers: 2 });
    await push(c, 'flush/app', 'v1', img);
    const { Redis } = await import('ioredis');
    const redis = new Redis(c.redis.url);
    await redis.flushall();
    redis.disconnect();
    await c.startWorkers(); // the reconciler runs when workers start
    for (const r of c.replicas) {
      await waitReplicated(c, 'flush/app', 'v1', r.name, `flush/app in ${r.name} after FLUSHALL`);
      expect(await pullsIdentical(r.url, 'flush/app', 'v1', img)).toBe(true);
    }
  });

  it('a worker killed mid-copy leaves nothing visible, and its leftovers go when the copy reruns', async () => {
    const big = randomBlob(160 * 1024 * 1024);
    const config = configBlob();
    const manifest = imageManifest({ config, layers: [big] });
    const img: Image = { config, layers: [big], manifest, blobs: [config, big] };
    await push(c, 'kill/app', 'v1', img);
    // On S3 this region's copies are streamed into staging (see `streamedRegions` above).
    const region = c.replicas[0]!;
    const store = await openStore(region.storage);
    const blobKey = Layout.blobData(parseDigest(big.digest));
    const tagKey = Layout.tagCurrent('kill/app', 'v1');
    const staging = Layout.staging('');
    try {
      const worker = c.spawnWorker(['--region', region.name, '--concurrency', '1']);
      let stderr = '';
      worker.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
      await waitFor(
        () => copyInProgress(storage, region.storage),
        'a copy in progress',
        60_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; worker stderr: ${stderr.slice(-2000)}`);
      });
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));

      expect(await exists(store, blobKey)).toBe(false);
      // What the killed copy wrote is no object at all: nothing staged, no blob.
      expect(await listAllKeys(store, staging)).toEqual([]);
      if (storage === 's3') {
        // The killed multipart upload is still there (younger than the 24 h staleTempMs, so no
        // sweep aborts it), holding parts that no key shows.
        const left = await incompleteUploads(region.storage, '');
        expect(left.some((u) => u.parts > 0)).toBe(true);
        for (const u of left) expect(await exists(store, u.key)).toBe(false);
      }
      const tag = await new RegistryClient(region.url).get('/v2/kill/app/manifests/v1', {
        headers: ACCEPT,
      });
      // The tag is not in the region's own storage yet (a GET falls back, which is fine).
      expect(tag.status).toBe(200);
      expect(await exists(store, tagKey)).toBe(false);
      // The killed copy's bytes are still on the region's storage (a temp file on fs, parts
      // of an incomplete multipart upload on S3)…
      expect(await leftovers(storage, region.storage)).toBeGreaterThan(0);

      const streamed = () =>
        metric('meridian_replication_bytes_copied_total', {
          region: region.name,
          mode: 'streamed',
        });
      const streamedBefore = await streamed();
      await c.startWorkers([region.name]);
      await waitFor(() => exists(store, tagKey), 'the tag in the region after restart', 90_000);
      expect(await exists(store, blobKey)).toBe(true);
      // On S3 the copy went through staging, not CopyObject (on fs, copyFrom copies the file).
      if (storage === 's3')
        expect((await streamed()) - streamedBefore).toBeGreaterThanOrEqual(big.size);
      const r = await new RegistryClient(region.url).get(`/v2/kill/app/blobs/${big.digest}`);
      expect(`sha256:${createHash('sha256').update(r.body).digest('hex')}`).toBe(big.digest);
      expect(await listAllKeys(store, staging)).toEqual([]);
      // …until the same copy runs again: it removes what its killed attempt left, instead of
      // leaving a full-size leftover for the 24 h stale sweep (a crash-looping worker would fill
      // the disk). Waited for, not read once: the restarted workers may still be writing a small
      // object of another copy through a temp file at this instant (a killed attempt's leftover
      // would stay for 24 h, so the wait cannot pass by chance).
      await waitFor(
        async () => (await leftovers(storage, region.storage)) === 0,
        "the killed copy's leftovers gone",
        15_000,
      );
    } finally {
      await store.close();
    }
  });
});
