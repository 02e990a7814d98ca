/**
 * A replica whose primary is frozen (SIGSTOP: connections accepted, nothing answered), seen
 * through the gateway. A replica asks the primary about a tag it knows is behind; while the
 * primary does not answer, it serves its own copy (availability first, ADR 0008) — and it must
 * do so before the gateway gives up on it (`gateway.upstreamTimeoutMs`, 5 s), or the client
 * gets a 503 although the region it was sent to could serve it.
 *
 * The primary is a real `meridian serve` child process, so it can be frozen; the replica, its
 * workers and the gateway run in the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { createGateway, HealthChecker, Topology } from '@meridian/gateway';
import type { RunningNode } from '@meridian/registry';
import { loadConfig, NodeConfigSchema, type NodeConfig } from '../../packages/cli/src/config';
import { serve } from '../../packages/cli/src/serve';
import { runWorkers } from '../../packages/cli/src/worker';
import { RegistryClient } from '../helpers/http';
import { image, MediaTypes } from '../helpers/images';
import { freePort } from '../helpers/ports';
import { startRedis, type TestRedis } from '../helpers/redis';
import { waitFor } from '../helpers/wait';

const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');
const ACCEPT = { Accept: MediaTypes.ociManifest };

describe('a frozen primary, seen through a replica and the gateway', () => {
  let dir: string;
  let redis: TestRedis;
  let primary: ChildProcess | undefined;
  let replica: RunningNode;
  let gateway: Server;
  let health: HealthChecker;
  let config: NodeConfig;
  let primaryUrl: string;
  let replicaUrl: string;
  let gatewayUrl: string;
  const repo = 'frozen/app';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-frozen-'));
    redis = await startRedis();
    const [p, r] = [await freePort(), await freePort()];
    primaryUrl = `http://127.0.0.1:${p}`;
    replicaUrl = `http://127.0.0.1:${r}`;
    const regions = [
      { name: 'eastus', role: 'primary', endpoint: primaryUrl, storage: join(dir, 'east') },
      { name: 'westeurope', role: 'replica', endpoint: replicaUrl, storage: join(dir, 'west') },
    ] as const;
    const file = join(dir, 'cluster.json');
    writeFileSync(
      file,
      JSON.stringify({
        regions,
        redis: redis.url,
        replication: { prefix: `z${Math.random().toString(36).slice(2, 8)}` },
        auth: { enabled: false },
        log: { level: process.env.MERIDIAN_TEST_LOG ?? 'silent' },
      }),
    );
    primary = spawn(process.execPath, [CLI, 'serve', '--config', file, '--region', 'eastus'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitFor(async () => (await fetch(`${primaryUrl}/readyz`)).ok, 'the primary to start');
    config = loadConfig(NodeConfigSchema, { file, env: {}, checkRegion: false });
    replica = await serve({ ...config, region: 'westeurope' });
    // The gateway's clients live in westeurope; its timeouts are the defaults.
    const gwRegions = regions.map((x) => ({ name: x.name, role: x.role, endpoint: x.endpoint }));
    health = new HealthChecker(gwRegions);
    health.start();
    gateway = createServer(
      createGateway({
        topology: new Topology({ regions: gwRegions, defaultRegion: 'westeurope' }),
        health,
        log: pino({ level: 'silent' }),
      }),
    );
    await new Promise<void>((done) => gateway.listen(0, '127.0.0.1', done));
    gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    health?.stop();
    if (primary && primary.exitCode === null && primary.signalCode === null) {
      primary.kill('SIGCONT');
      primary.kill('SIGKILL');
    }
    await new Promise<void>((done) => {
      if (!gateway) return done();
      gateway.close(() => done());
      gateway.closeAllConnections();
    });
    await replica?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The digest `url` answers for the tag, bounded so a hang fails here. */
  async function tagAt(url: string): Promise<{ status: number; digest?: string; region?: string }> {
    const res = await fetch(`${url}/v2/${repo}/manifests/v1`, {
      headers: ACCEPT,
      signal: AbortSignal.timeout(30_000),
    });
    await res.arrayBuffer();
    return {
      status: res.status,
      digest: res.headers.get('docker-content-digest') ?? undefined,
      region: res.headers.get('x-meridian-region') ?? undefined,
    };
  }

  const a = image();

  it('serves the region’s copy of a behind tag before the gateway gives up, then converges', async () => {
    const b = image();
    await new RegistryClient(primaryUrl).pushImage(repo, 'v1', a.blobs, a.manifest);
    const workers = await runWorkers(config, []);
    const tagFile = join(dir, 'west', 'repositories', repo, '_manifests', 'tags', 'v1', 'current');
    await waitFor(async () => existsSync(tagFile), 'v1 → A copied to westeurope');
    await workers.close();

    // The tag moves while the workers are stopped: the replica knows it is behind and answers
    // it from the primary.
    await new RegistryClient(primaryUrl).pushImage(repo, 'v1', b.blobs, b.manifest);
    await waitFor(
      async () => (await tagAt(replicaUrl)).digest === b.manifest.digest,
      'the replica to resolve v1 at the primary',
    );

    primary!.kill('SIGSTOP');
    try {
      // The region's own copy, served by the region the client was sent to — not a 503.
      expect(await tagAt(gatewayUrl)).toEqual({
        status: 200,
        digest: a.manifest.digest,
        region: 'westeurope',
      });
    } finally {
      primary!.kill('SIGCONT');
    }

    // Thawed, with workers again: every read ends at B, never back at A.
    const again = await runWorkers(config, []);
    try {
      await waitFor(
        async () => (await tagAt(gatewayUrl)).digest === b.manifest.digest,
        'v1 → B through the gateway',
      );
      await waitFor(
        async () =>
          (JSON.parse(readFileSync(tagFile, 'utf8')) as { digest: string }).digest ===
          b.manifest.digest,
        'westeurope to hold v1 → B',
      );
      expect(await tagAt(replicaUrl)).toMatchObject({ status: 200, digest: b.manifest.digest });
    } finally {
      await again.close();
    }
  });

  it('refuses pushes at once while the primary hangs, and takes them again once it answers', async () => {
    const upload = () =>
      fetch(`${gatewayUrl}/v2/${repo}/blobs/uploads/`, {
        method: 'POST',
        // Bounded well below the 30 s a request with a body may wait for its answer.
        signal: AbortSignal.timeout(15_000),
      });
    primary!.kill('SIGSTOP');
    try {
      // A push's first question waits out the gateway's upstream timeout at the primary, then
      // is answered by the region (it holds the blob since the test above).
      const head = await fetch(`${gatewayUrl}/v2/${repo}/blobs/${a.config.digest}`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(30_000),
      });
      expect(head.status).toBe(200);
      expect(head.headers.get('x-meridian-region')).toBe('westeurope');
      // The primary is known to hang now: the upload is refused at once, saying why.
      const refused = await upload();
      expect(refused.status).toBe(405);
      const body = (await refused.json()) as { errors: { code: string; message: string }[] };
      expect(body.errors[0]?.code).toBe('UNSUPPORTED');
      expect(body.errors[0]?.message).toMatch(/primary region is unavailable/);
    } finally {
      primary!.kill('SIGCONT');
    }
    await waitFor(async () => (await upload()).status === 202, 'uploads through the gateway');
  });
});
