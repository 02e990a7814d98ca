/**
 * Webhook delivery guarantees (issue 14): in order per repository through a failing receiver,
 * a dead receiver does not hold back a healthy one, and a node SIGKILLed right after a push
 * still delivers its event once it is back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startCluster, type TestCluster } from './helpers/cluster';
import { RegistryClient } from './helpers/http';
import { image } from './helpers/images';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';
import { WebhookReceiver } from './helpers/webhook-receiver';

const HOOKS = '/meridian/v1/admin/webhooks';
const CLI = resolve(__dirname, '../packages/cli/dist/main.js');

async function createHook(base: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${base}${HOOKS}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create webhook: ${res.status} ${await res.text()}`);
}

describe('webhook delivery', () => {
  let c: TestCluster;
  let receiver: WebhookReceiver;
  let hung: Server;
  let hungUrl: string;
  let hungRequests = 0;

  beforeAll(async () => {
    c = await startCluster({
      regions: ['eastus'],
      webhooks: { allowPrivateTargets: ['loopback'], retryBaseMs: 100, timeoutMs: 60_000 },
    });
    receiver = await new WebhookReceiver().start();
    // A receiver that accepts connections and never answers.
    hung = createServer(() => {
      hungRequests++;
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    hungUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    hung?.closeAllConnections();
    hung?.close();
    await receiver?.close();
    await c?.close();
  });

  it('delivers a repository’s pushes in commit order through a receiver that fails for a while', async () => {
    await createHook(c.primary.url, { name: 'ordered', url: receiver.url, scope: 'ordered/app:*' });
    receiver.script = [500, 500, 500];
    const client = new RegistryClient(c.primary.url);
    const tags = ['t1', 't2', 't3', 't4'];
    for (const tag of tags) {
      const img = image();
      await client.pushImage('ordered/app', tag, img.blobs, img.manifest);
    }
    await waitFor(async () => receiver.of('push').length >= 3 + tags.length, 'every push');
    const sent = receiver.of('push').map((r) => (r.json.target as { tag: string }).tag);
    // Three failed attempts of t1, then t1 succeeds, then the others in order.
    expect(sent).toEqual(['t1', 't1', 't1', ...tags]);
  });

  it('a receiver that never answers does not hold back a healthy one', async () => {
    await createHook(c.primary.url, { name: 'dead', url: hungUrl, scope: 'busy/**:*' });
    await createHook(c.primary.url, { name: 'healthy', url: receiver.url, scope: 'busy/**:*' });
    const before = receiver.of('push').length;
    const client = new RegistryClient(c.primary.url);
    for (let i = 0; i < 12; i++) {
      const img = image();
      await client.pushImage(`busy/app${i}`, 'v1', img.blobs, img.manifest);
    }
    // All twelve reach the healthy receiver while the dead one still holds its first requests
    // (it would answer nothing for 60 s): they never waited behind it.
    await waitFor(async () => receiver.of('push').length - before === 12, 'the healthy pushes');
    expect(hungRequests).toBeGreaterThan(0);
    expect(hungRequests).toBeLessThanOrEqual(4); // at most perEndpointConcurrency in flight
  });
});

describe('webhooks across a SIGKILL', () => {
  let dir: string;
  let node: ChildProcess | undefined;
  let redis: ChildProcess | undefined;
  let receiver: WebhookReceiver;
  let url: string;
  let redisPort: number;
  let configFile: string;

  const startRedis = async () => {
    redis = spawn(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore', cwd: dir },
    );
    await waitFor(
      () =>
        new Promise<boolean>((done) => {
          const s = connect(redisPort, '127.0.0.1');
          s.once('connect', () => {
            s.destroy();
            done(true);
          });
          s.once('error', () => done(false));
        }),
      'redis',
    );
  };
  const kill = async (p: ChildProcess | undefined) => {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  const startNode = async () => {
    node = spawn(process.execPath, [CLI, 'serve', '--config', configFile, '--region', 'eastus'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 'the node');
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-webhooks-kill-'));
    receiver = await new WebhookReceiver().start();
    redisPort = await freePort();
    url = `http://127.0.0.1:${await freePort()}`;
    configFile = join(dir, 'node.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        regions: [{ name: 'eastus', role: 'primary', endpoint: url, storage: join(dir, 'east') }],
        redis: `redis://127.0.0.1:${redisPort}`,
        replication: { prefix: `wk${Math.random().toString(36).slice(2, 8)}` },
        auth: { enabled: false },
        events: { journalDir: join(dir, 'events') },
        webhooks: { allowPrivateTargets: ['loopback'], retryBaseMs: 100 },
        log: { level: process.env.MERIDIAN_TEST_LOG ?? 'silent' },
      }),
    );
    await startRedis();
    await startNode();
  });
  afterAll(async () => {
    await kill(node);
    await kill(redis);
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers the push of a node killed right after its 201, once it is back', async () => {
    await createHook(url, { name: 'kill', url: receiver.url });
    // Redis is down, so nothing is queued before the kill: only the journal has the event.
    await kill(redis);
    const img = image();
    await new RegistryClient(url).pushImage('kill/app', 'v1', img.blobs, img.manifest);
    await kill(node);
    await startRedis();
    expect(receiver.of('push')).toHaveLength(0);
    await startNode();
    const [push] = await waitFor(
      async () => receiver.of('push').length > 0 && receiver.of('push'),
      'the replayed push',
    );
    expect(push!.json).toMatchObject({
      action: 'push',
      target: { repository: 'kill/app', tag: 'v1', digest: img.manifest.digest },
    });
  });
});

describe('webhooks.delivery: workers', () => {
  let c: TestCluster;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    c = await startCluster({
      regions: ['eastus', 'westeurope'],
      webhooks: { allowPrivateTargets: ['loopback'], delivery: 'workers' },
    });
    receiver = await new WebhookReceiver().start();
  });
  afterAll(async () => {
    await receiver?.close();
    await c?.close();
  });

  it('the primary queues, meridian worker sends', async () => {
    await createHook(c.primary.url, { name: 'fromworkers', url: receiver.url });
    const img = image();
    await new RegistryClient(c.primary.url).pushImage('w/app', 'v1', img.blobs, img.manifest);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.received).toHaveLength(0); // queued, nobody sends yet
    await c.startWorkers();
    await waitFor(async () => receiver.of('push').length === 1, 'the push, sent by the worker');
  });
});
