/**
 * A herd of cold pulls through the gateway (issue 18): 50 clients the gateway sends to the
 * westeurope replica pull, at once, an image the replica has not received yet. The primary must
 * serve each blob once and every pull must complete byte-identical; and when the primary goes
 * away mid-herd, every pull must end — complete, or fail fast — and none may hang.
 *
 * The primary is reached — by the replica and by the gateway alike — through a counting proxy,
 * which also plays the primary's sudden death (every connection reset, new ones refused).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createGateway, HealthChecker, Topology } from '@meridian/gateway';
import type { RunningNode } from '@meridian/registry';
import { loadConfig, NodeConfigSchema } from '../../packages/cli/src/config';
import { serve } from '../../packages/cli/src/serve';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy';
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

describe('a herd of cold pulls through the gateway', () => {
  let dir: string;
  let redis: TestRedis;
  let proxy: CountingProxy;
  let primary: RunningNode;
  let replica: RunningNode;
  let gateway: Server;
  let primaryUrl: string;
  let gatewayUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-herd-gw-'));
    redis = await startRedis();
    const [p, r] = [await freePort(), await freePort()];
    primaryUrl = `http://127.0.0.1:${p}`;
    const replicaUrl = `http://127.0.0.1:${r}`;
    const cluster = {
      regions: [
        { name: 'eastus', role: 'primary', endpoint: primaryUrl, storage: join(dir, 'east') },
        { name: 'westeurope', role: 'replica', endpoint: replicaUrl, storage: join(dir, 'west') },
      ],
      redis: redis.url,
      replication: { prefix: `g${Math.random().toString(36).slice(2, 8)}` },
      auth: { enabled: false },
      // Shorter than the default 30 s, so a primary that stops sending mid-herd ends the pulls
      // well within the test's bounds; long enough that a starved CI machine (50 clients hashing
      // on 2 cores) is not taken for a stalled primary.
      fallback: { stallTimeoutMs: 15_000 },
      log: { level: process.env.MERIDIAN_TEST_LOG ?? 'silent' },
    };
    const file = join(dir, 'cluster.json');
    writeFileSync(file, JSON.stringify(cluster));
    const config = loadConfig(NodeConfigSchema, { file, env: {}, checkRegion: false });
    primary = await serve({ ...config, region: 'eastus' });
    proxy = await startCountingProxy(primaryUrl);
    replica = await serve({ ...config, region: 'westeurope', primary: proxy.url });
    // The gateway's clients live in westeurope; its way to the primary is the same proxy.
    const regions = [
      { name: 'eastus', role: 'primary' as const, endpoint: proxy.url },
      { name: 'westeurope', role: 'replica' as const, endpoint: replicaUrl },
    ];
    gateway = createServer(
      createGateway({
        topology: new Topology({ regions, defaultRegion: 'westeurope' }),
        health: new HealthChecker(regions),
        log: pino({ level: 'silent' }),
      }),
    );
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => {
      if (!gateway) return resolve();
      gateway.close(() => resolve());
      gateway.closeAllConnections();
    });
    await replica?.close();
    await primary?.close();
    await proxy?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'costs the primary one copy of each blob, every pull byte-identical',
    async () => {
      const repo = 'herd/gw';
      const layer = await streamedBlob(LAYER, 'gateway herd layer');
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

      const viaGateway = new RegistryClient(gatewayUrl);
      const pulls = await Promise.all(
        Array.from({ length: HERD }, async () => {
          const m = await viaGateway.get(`/v2/${repo}/manifests/v1`, {
            headers: { Accept: MediaTypes.ociManifest },
          });
          const blobs = await Promise.all(
            [cfg.digest, layer.digest].map((d) => pullBlob(`${gatewayUrl}/v2/${repo}/blobs/${d}`)),
          );
          return { manifest: m, blobs };
        }),
      );
      for (const p of pulls) {
        expect(p.manifest.status).toBe(200);
        expect(p.manifest.headers['x-meridian-region']).toBe('westeurope');
        expect(p.manifest.body.equals(manifest.bytes)).toBe(true);
        expect(p.blobs.map((b) => [b.status, b.outcome, b.digest])).toEqual([
          [200, 'complete', cfg.digest],
          [200, 'complete', layer.digest],
        ]);
      }
      expect(Object.fromEntries(proxy.blobGets)).toEqual({ [cfg.digest]: 1, [layer.digest]: 1 });
      expect(proxy.blobBytes()).toBe(layer.size + cfg.size);
    },
    HERD_TIMEOUT_MS,
  );

  it('ends every pull when the primary goes away mid-herd: none hangs', async () => {
    const repo = 'herd/gw-gone';
    const layer = await streamedBlob(LAYER, 'gateway herd layer, primary gone');
    await pushStreamed(primaryUrl, repo, layer);
    proxy.reset();
    const url = `${gatewayUrl}/v2/${repo}/blobs/${layer.digest}`;
    const herd = Array.from({ length: HERD }, () => pullBlob(url));
    await waitFor(async () => proxy.blobBytes() >= 8 * MiB, 'the first bytes to cross', 30_000);
    await proxy.cut();
    const results: BlobPull[] = await ended(Promise.all(herd), 20_000, 'the herd');
    // Either the whole, right blob, or a clear failure: an aborted stream or a 503.
    expect(unclearPulls(results, layer.digest)).toEqual([]);
    expect(results.filter((r) => r.outcome === 'complete' && r.status === 200)).toHaveLength(0);
    // Nothing half-copied is served: a retry through the gateway is a clean 503.
    const retry = await ended(
      new RegistryClient(gatewayUrl).get(`/v2/${repo}/blobs/${layer.digest}`),
      20_000,
      'the retry',
    );
    expect(retry.status).toBe(503);
    expect(ociErrors(retry)[0]).toMatchObject({ code: 'UNAVAILABLE' });
  });
});
