/**
 * A herd of cold pulls (issue 18): 50 clients pull, at once, from a replica an image it has not
 * received yet (replication is behind: no worker runs). The primary must serve each blob once —
 * the replica coalesces the misses into one upstream fetch that it tees into its region — every
 * pull must complete byte-identical, and the sync job that runs afterwards must find the
 * replica's copy instead of transferring the layer again. Then the same herd while the primary
 * goes away: every pull ends (completes or fails fast), none hangs.
 *
 * The replica reaches its primary through a gate (which can hold the primary's bytes back, to
 * show that the herd streams what has arrived) and a counting proxy (what the primary serves to
 * it, by blob), which also plays the primary's sudden death: every connection reset, new ones
 * refused. The same herd through the gateway is in cold-herd-gateway.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register } from 'prom-client';
import type { RunningNode } from '@meridian/registry';
import { RepositoryLayout, openStore } from '@meridian/storage';
import { loadConfig, NodeConfigSchema, type NodeConfig } from '../../packages/cli/src/config';
import { serve } from '../../packages/cli/src/serve';
import { runWorkers } from '../../packages/cli/src/worker';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy';
import { startGateProxy, type GateProxy } from '../helpers/gate-proxy';
import { RegistryClient, ociErrors } from '../helpers/http';
import { configBlob, imageManifest, MediaTypes } from '../helpers/images';
import { freePort } from '../helpers/ports';
import { startRedis, type TestRedis } from '../helpers/redis';
import {
  pullBlob,
  pushStreamed,
  streamedBlob,
  type BlobPull,
  unclearPulls,
} from '../helpers/streamed-blob';
import { ended, waitFor } from '../helpers/wait';

const MiB = 1024 * 1024;
const LAYER = 64 * MiB;
const HERD = 50;
/** 50 × 64 MiB pulled and hashed by this process: on a loaded 2-core machine it takes minutes. */
const HERD_TIMEOUT_MS = 480_000;

/** A counter's value for one region, from this process's registry (the worker runs here). */
async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const m = register.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/** A blob GET whose progress can be watched while it runs; `done` gives status and digest. */
function watchedPull(url: string): {
  received(): number;
  done: Promise<{ status: number; digest: string }>;
} {
  let received = 0;
  const done = new Promise<{ status: number; digest: string }>((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      res.on('data', (c: Buffer) => {
        received += c.length;
        hash.update(c);
      });
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, digest: `sha256:${hash.digest('hex')}` }),
      );
    });
    req.on('error', reject);
    req.end();
  });
  return { received: () => received, done };
}

describe('a herd of cold pulls at a replica', () => {
  let dir: string;
  let redis: TestRedis;
  let config: NodeConfig;
  let proxy: CountingProxy;
  let gate: GateProxy;
  let primary: RunningNode;
  let replica: RunningNode;
  let primaryUrl: string;
  let replicaUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-herd-'));
    redis = await startRedis();
    const [p, r] = [await freePort(), await freePort()];
    primaryUrl = `http://127.0.0.1:${p}`;
    replicaUrl = `http://127.0.0.1:${r}`;
    const cluster = {
      regions: [
        { name: 'eastus', role: 'primary', endpoint: primaryUrl, storage: join(dir, 'east') },
        { name: 'westeurope', role: 'replica', endpoint: replicaUrl, storage: join(dir, 'west') },
      ],
      redis: redis.url,
      replication: { prefix: `h${Math.random().toString(36).slice(2, 8)}` },
      auth: { enabled: false },
      fallback: { stallTimeoutMs: 5000 },
      log: { level: process.env.MERIDIAN_TEST_LOG ?? 'silent' },
    };
    const file = join(dir, 'cluster.json');
    writeFileSync(file, JSON.stringify(cluster));
    config = loadConfig(NodeConfigSchema, { file, env: {}, checkRegion: false });
    primary = await serve({ ...config, region: 'eastus' });
    proxy = await startCountingProxy(primaryUrl);
    gate = await startGateProxy(proxy.url);
    replica = await serve({ ...config, region: 'westeurope', primary: gate.url });
  });

  afterAll(async () => {
    await replica?.close();
    await primary?.close();
    await gate?.close();
    await proxy?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'costs the primary one copy of each blob, and the sync job finds the replica’s copy',
    async () => {
      const repo = 'herd/app';
      const layer = await streamedBlob(LAYER, 'herd layer');
      const cfg = configBlob();
      const manifest = imageManifest({
        config: cfg,
        layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: layer.digest, size: layer.size }],
      });
      const client = new RegistryClient(primaryUrl);
      await pushStreamed(primaryUrl, repo, layer);
      expect((await client.uploadBlob(repo, cfg)).status).toBe(201);
      expect((await client.putManifest(repo, 'v1', manifest)).status).toBe(201);
      proxy.reset();

      // 50 pulls at once, as a rollout's pods do: the manifest by tag, then its blobs.
      const replicaClient = new RegistryClient(replicaUrl);
      const pulls = await Promise.all(
        Array.from({ length: HERD }, async () => {
          const m = await replicaClient.get(`/v2/${repo}/manifests/v1`, {
            headers: { Accept: MediaTypes.ociManifest },
          });
          const blobs = await Promise.all(
            [cfg.digest, layer.digest].map((d) => pullBlob(`${replicaUrl}/v2/${repo}/blobs/${d}`)),
          );
          return { manifest: m, blobs };
        }),
      );
      for (const p of pulls) {
        expect(p.manifest.status).toBe(200);
        expect(p.manifest.body.equals(manifest.bytes)).toBe(true);
        expect(p.blobs.map((b) => [b.status, b.outcome, b.digest])).toEqual([
          [200, 'complete', cfg.digest],
          [200, 'complete', layer.digest],
        ]);
      }
      // The primary served each blob once: its egress is the image, not 50 of them.
      expect(Object.fromEntries(proxy.blobGets)).toEqual({ [cfg.digest]: 1, [layer.digest]: 1 });
      expect(proxy.blobBytes()).toBe(layer.size + cfg.size);

      // Replication catches up: the blob jobs find the replica's copy and transfer nothing again
      // (only the manifest's own bytes, which a fallback serves but does not keep, cross).
      const copiedBefore = await counter('meridian_replication_bytes_copied_total', {
        region: 'westeurope',
      });
      const blobsBefore = await counter('meridian_replication_objects_copied_total', {
        region: 'westeurope',
        kind: 'blob',
      });
      const workers = await runWorkers({ ...config, region: 'eastus' }, ['westeurope']);
      const west = await openStore(join(dir, 'west'));
      try {
        await waitFor(
          async () => (await new RepositoryLayout(west).readTag(repo, 'v1'))?.digest,
          'the tag to reach westeurope',
        );
      } finally {
        await workers.close();
        await west.close();
      }
      const copied =
        (await counter('meridian_replication_bytes_copied_total', { region: 'westeurope' })) -
        copiedBefore;
      expect(copied).toBeLessThanOrEqual(manifest.size);
      expect(
        (await counter('meridian_replication_objects_copied_total', {
          region: 'westeurope',
          kind: 'blob',
        })) - blobsBefore,
      ).toBe(0);
    },
    HERD_TIMEOUT_MS,
  );

  it(
    'streams to every pull of the herd the bytes that arrived, before the rest has',
    async () => {
      const repo = 'herd/streamed';
      const layer = await streamedBlob(LAYER, 'herd layer, streamed');
      await pushStreamed(primaryUrl, repo, layer);
      proxy.reset();
      // The primary's bytes stop after 16 MiB until released: a pull that waited for the copy to
      // finish would receive nothing meanwhile.
      const HELD_AT = 16 * MiB;
      gate.hold(HELD_AT);
      try {
        const url = `${replicaUrl}/v2/${repo}/blobs/${layer.digest}`;
        const herd = Array.from({ length: HERD }, () => watchedPull(url));
        await waitFor(
          async () => (gate.held() > 0 && herd.every((p) => p.received() > 0)) || undefined,
          'every pull of the herd to receive its first bytes while the rest is held',
          60_000,
        );
        for (const p of herd) expect(p.received()).toBeLessThanOrEqual(HELD_AT);
        gate.release();
        const results = await Promise.all(herd.map((p) => p.done));
        for (const r of results) expect(r).toEqual({ status: 200, digest: layer.digest });
        expect(Object.fromEntries(proxy.blobGets)).toEqual({ [layer.digest]: 1 });
        expect(proxy.blobBytes()).toBe(layer.size);
      } finally {
        gate.release();
        gate.hold(Infinity);
      }
    },
    HERD_TIMEOUT_MS,
  );

  it('ends every pull of the herd when the primary goes away mid-blob: none hangs', async () => {
    const repo = 'herd/gone';
    const layer = await streamedBlob(LAYER, 'herd layer, primary gone');
    await pushStreamed(primaryUrl, repo, layer);
    proxy.reset();
    const url = `${replicaUrl}/v2/${repo}/blobs/${layer.digest}`;
    const herd = Array.from({ length: HERD }, () => pullBlob(url));
    await waitFor(async () => proxy.blobBytes() >= 8 * MiB, 'the first bytes to cross', 30_000);
    await proxy.cut();
    const results: BlobPull[] = await ended(Promise.all(herd), 20_000, 'the herd');
    // Either the whole, right blob, or a clear failure: an aborted stream or a 503.
    expect(unclearPulls(results, layer.digest)).toEqual([]);
    expect(results.filter((r) => r.outcome === 'complete' && r.status === 200)).toHaveLength(0);
    // The replica kept nothing half-copied: a retry is a clean 503 naming the primary's absence.
    const retry = await new RegistryClient(replicaUrl).get(`/v2/${repo}/blobs/${layer.digest}`);
    expect(retry.status).toBe(503);
    expect(ociErrors(retry)[0]).toMatchObject({ code: 'UNAVAILABLE' });
  });
});
