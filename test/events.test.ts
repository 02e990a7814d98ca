/**
 * Domain events (issue 11, ADR 0010): journaled before the reply, delivered after it.
 *
 * The primary is a real `meridian serve` child process (so it can be SIGKILLed right after a
 * 201); the subscriber observed is replication, through the sync jobs it leaves in Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import type { RegistryEvent } from '@meridian/registry';
import { ReplicationQueues, type SyncTarget } from '@meridian/replication';
import { AuthedClient, basic, OWNER_PASSWORD, startAuthNode } from './helpers/auth-node';
import { RegistryClient } from './helpers/http';
import { image, type Image } from './helpers/images';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

const CLI = resolve(__dirname, '../packages/cli/dist/main.js');

/** A redis-server this test can stop and start again on the same port. */
class OwnRedis {
  proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      // DEBUG SLEEP needs the debug command (off by default since Redis 7).
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
      ].concat(['--enable-debug-command', 'local']),
      { stdio: 'ignore', cwd: this.dir },
    );
    const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null });
    probe.on('error', () => {});
    await waitFor(async () => (await probe.connect().then(() => probe.ping())) === 'PONG', 'redis');
    probe.disconnect();
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }
}

describe('domain events', () => {
  let dir: string;
  let redis: OwnRedis;
  let node: ChildProcess | undefined;
  let url: string;
  let configFile: string;
  let queues: ReplicationQueues;
  const repo = 'events/app';

  const startNode = async (): Promise<void> => {
    node = spawn(process.execPath, [CLI, 'serve', '--config', configFile, '--region', 'eastus'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 'the node to start');
  };
  const killNode = async (): Promise<void> => {
    const n = node;
    if (!n || n.exitCode !== null) return;
    const exited = new Promise((r) => n.once('exit', r));
    n.kill('SIGKILL');
    await exited;
  };
  /** True once both the manifest and the tag have a pending sync job for the replica. */
  const queued = async (img: Image, tag: string): Promise<boolean> => {
    const targets: SyncTarget[] = [
      { kind: 'manifest', repository: repo, digest: img.manifest.digest },
      { kind: 'tag', repository: repo, tag },
    ];
    for (const t of targets)
      if ((await queues.pendingSince('westeurope', t)) === undefined) return false;
    return true;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-events-'));
    redis = new OwnRedis(await freePort(), dir);
    await redis.start();
    const [p, r] = [await freePort(), await freePort()];
    url = `http://127.0.0.1:${p}`;
    const prefix = `ev${Math.random().toString(36).slice(2, 8)}`;
    configFile = join(dir, 'node.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        regions: [
          { name: 'eastus', role: 'primary', endpoint: url, storage: join(dir, 'east') },
          {
            name: 'westeurope',
            role: 'replica',
            endpoint: `http://127.0.0.1:${r}`,
            storage: join(dir, 'west'),
          },
        ],
        redis: redis.url,
        replication: { prefix },
        auth: { enabled: false },
        events: { journalDir: join(dir, 'events') },
        log: { level: process.env.MERIDIAN_TEST_LOG ?? 'silent' },
      }),
    );
    queues = new ReplicationQueues({ redisUrl: redis.url, prefix });
    await startNode();
  });

  afterAll(async () => {
    await killNode();
    await queues?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers the events of a push to replication after a kill -9 right after the 201', async () => {
    const img = image();
    // Redis is down, so nothing can be delivered before the kill: only the journal has it.
    await redis.stop();
    await new RegistryClient(url).pushImage(repo, 'v1', img.blobs, img.manifest);
    await killNode();
    await redis.start();
    expect(await queued(img, 'v1')).toBe(false);
    await startNode();
    await waitFor(() => queued(img, 'v1'), 'the replayed sync jobs');
  });

  it('answers a push while Redis is paused and delivers its events once Redis answers', async () => {
    const img = image();
    const sleeper = new Redis(redis.url);
    let awake = false;
    const sleeping = sleeper.call('DEBUG', 'SLEEP', '5').then(() => {
      awake = true;
    });
    await new Promise((r) => setTimeout(r, 200)); // the server is inside the sleep now
    await new RegistryClient(url).pushImage(repo, 'v2', img.blobs, img.manifest);
    // The 201 came back while Redis was still asleep: the reply did not wait on it.
    expect(awake).toBe(false);
    await sleeping;
    sleeper.disconnect();
    await waitFor(() => queued(img, 'v2'), 'the sync jobs once Redis answers');
    // The metrics subscriber counts it too.
    const counted = /^meridian_events_journaled_total\{kind="manifestPut"\} [1-9]/m;
    await waitFor(
      async () => counted.test(await (await fetch(`${url}/metrics`)).text()),
      'meridian_events_journaled_total to count the manifest',
    );
  });
});

describe('domain events carry the actor', () => {
  it('names the identity, address and user agent of an authenticated push', async () => {
    const node = await startAuthNode();
    try {
      const seen: RegistryEvent[] = [];
      await node.registry.events.attach({ name: 'test', deliver: (e) => void seen.push(e) });
      const client = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
      const ua = { 'User-Agent': 'events-test/1.0' };
      const img = image();
      for (const b of img.blobs) {
        const r = await client.uploadBlob('actors/app', b);
        expect(r.status).toBe(201);
      }
      const put = await client.put('/v2/actors/app/manifests/v1', {
        headers: { 'Content-Type': img.manifest.mediaType, ...ua },
        body: img.manifest.bytes,
      });
      expect(put.status).toBe(201);
      const requestId = put.header('x-request-id');
      await waitFor(async () => seen.some((e) => e.type === 'tagMoved'), 'the tag event');
      const tagMoved = seen.find((e) => e.type === 'tagMoved')!;
      expect(tagMoved).toMatchObject({
        repository: 'actors/app',
        tag: 'v1',
        digest: img.manifest.digest,
        requestId,
        actor: { kind: 'user', name: 'owner', address: '127.0.0.1', userAgent: 'events-test/1.0' },
      });
      const kinds = seen.map((e) => e.type);
      expect(kinds).toEqual(['blobCommitted', 'blobCommitted', 'manifestPut', 'tagMoved']);
      expect(seen.map((e) => e.sequence)).toEqual([1, 2, 3, 4]);

      // A repository token: the actor names it.
      const made = await client.request('POST', '/meridian/v1/admin/tokens', {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'ci-push', scopeMap: '_repositories_push' }),
      });
      expect(made.status).toBeLessThan(300);
      const password = made.json<{ passwords: { password: string }[] }>().passwords[0]!.password;
      const ci = new AuthedClient(node.url, basic('ci-push', password));
      expect((await ci.putManifest('actors/app', 'v2', img.manifest)).status).toBe(201);
      const byToken = () => seen.find((e) => e.type === 'tagMoved' && e.tag === 'v2');
      await waitFor(async () => byToken(), 'the token push event');
      expect(byToken()).toMatchObject({
        actor: { kind: 'token', name: 'ci-push', token: 'ci-push', address: '127.0.0.1' },
      });
    } finally {
      await node.close();
    }
  });
});
