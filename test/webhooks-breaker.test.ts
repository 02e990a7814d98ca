/**
 * The per-endpoint circuit breaker is shared by every delivering process (issue 14, ADR 0013):
 * two `meridian worker` processes (`webhooks.delivery: workers`, one delivery in flight per
 * endpoint each) against a real redis-server and real HTTP receivers on loopback. A dead
 * receiver gets `threshold` failed attempts from the two together (not `threshold` from each),
 * then none while the breaker is open, while a healthy endpoint gets everything meanwhile; when
 * the receiver is back, exactly one probe goes first, alone, then the rest follows.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_BREAKER, WebhookQueue } from '@meridian/webhooks';
import { startCluster, type TestCluster } from './helpers/cluster';
import { RegistryClient } from './helpers/http';
import { image } from './helpers/images';
import { waitFor } from './helpers/wait';
import { WebhookReceiver } from './helpers/webhook-receiver';

const HOOKS = '/meridian/v1/admin/webhooks';
const PUSHES = 6;

async function createHook(base: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${base}${HOOKS}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create webhook: ${res.status} ${await res.text()}`);
}

/**
 * Answers 503 while `dead`; once back, holds the first request (the probe) for `holdMs` before
 * its 200, counting what else arrives meanwhile.
 */
class FlakyReceiver {
  dead = true;
  /** Every request, in arrival order: when, its repository and the status it got. */
  readonly requests: { at: number; repository: string; status: number }[] = [];
  /** Requests that arrived while the first request after the recovery was held. */
  duringProbe = 0;
  private probing: 'not yet' | 'held' | 'done' = 'not yet';
  private server: Server | undefined;
  url = '';

  constructor(private readonly holdMs: number) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          target: { repository: string };
        };
        const at = Date.now();
        const answer = (status: number) => {
          this.requests.push({ at, repository: body.target.repository, status });
          res.statusCode = status;
          res.end();
        };
        if (this.dead) return answer(503);
        if (this.probing === 'held') this.duringProbe++;
        if (this.probing !== 'not yet') return answer(200);
        this.probing = 'held';
        setTimeout(() => {
          this.probing = 'done';
          answer(200);
        }, this.holdMs);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => {
      this.server?.close(() => r());
      this.server?.closeAllConnections();
    });
  }
}

describe('a circuit breaker shared by every delivering process', () => {
  let c: TestCluster;
  let flaky: FlakyReceiver;
  let healthy: WebhookReceiver;
  let queue: WebhookQueue;

  beforeAll(async () => {
    c = await startCluster({
      regions: ['eastus'],
      webhooks: {
        allowPrivateTargets: ['loopback'],
        delivery: 'workers',
        perEndpointConcurrency: 1,
        retryBaseMs: 100,
        retryMaxMs: 400,
      },
    });
    flaky = await new FlakyReceiver(1500).start();
    healthy = await new WebhookReceiver().start();
    queue = new WebhookQueue({ redisUrl: c.redis.url, prefix: c.config.replication.prefix });
  });
  afterAll(async () => {
    await queue?.close();
    await flaky?.close();
    await healthy?.close();
    await c?.close();
  });

  it('two processes stop sending to a dead receiver after the threshold in all; one probe, then the rest', async () => {
    await createHook(c.primary.url, { name: 'flaky', url: flaky.url });
    await createHook(c.primary.url, { name: 'healthy', url: healthy.url });
    c.spawnWorker();
    c.spawnWorker();
    await waitFor(
      async () => (await queue.queue.getWorkersCount()) >= 2,
      'two meridian worker processes delivering',
    );

    const client = new RegistryClient(c.primary.url);
    for (let i = 0; i < PUSHES; i++) {
      const img = image();
      await client.pushImage(`breaker/app${i}`, 'v1', img.blobs, img.manifest);
    }
    const { threshold, baseOpenMs } = DEFAULT_BREAKER;
    await waitFor(async () => flaky.requests.length >= threshold, 'the first failed attempts');
    // The breaker opened when the threshold-th attempt failed, for `baseOpenMs` at least.
    const openedAt = flaky.requests[threshold - 1]!.at;
    // The healthy endpoint is not held back by the dead one.
    await waitFor(async () => healthy.of('push').length === PUSHES, 'every push, to healthy');
    // Inside the opening: the two processes together sent `threshold` attempts, plus at most
    // the one the other process had in flight when it opened — not `threshold` each.
    const inside = openedAt + baseOpenMs - 500;
    await new Promise((r) => setTimeout(r, Math.max(0, inside - Date.now())));
    const whileOpen = flaky.requests.filter((r) => r.at < inside);
    expect(whileOpen.length).toBeGreaterThanOrEqual(threshold);
    expect(whileOpen.length).toBeLessThanOrEqual(threshold + 1);
    expect(whileOpen.every((r) => r.status === 503)).toBe(true);

    // The receiver is back: after the opening, one probe, alone; then every push arrives.
    flaky.dead = false;
    await waitFor(
      async () => flaky.requests.filter((r) => r.status === 200).length >= PUSHES,
      'every push delivered to the recovered receiver',
      60_000,
    );
    expect(flaky.duringProbe).toBe(0);
    const delivered = flaky.requests.filter((r) => r.status === 200).map((r) => r.repository);
    expect(delivered.sort()).toEqual(
      Array.from({ length: PUSHES }, (_, i) => `breaker/app${i}`).sort(),
    );
    expect(healthy.of('push')).toHaveLength(PUSHES);
  });
});
