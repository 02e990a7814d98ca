import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createGateway } from './gateway';
import { HealthChecker } from './health';
import { Topology, type GatewayRegion } from './topology';

/** A fake node of a region: answers `<node>:<body>` and records what it saw. */
interface FakeNode {
  name: string;
  url: string;
  seen: string[];
  server: Server;
}

async function fakeNode(name: string): Promise<FakeNode> {
  const n: FakeNode = { name, url: '', seen: [], server: createServer() };
  n.server.on('request', (req, res) => {
    if (req.url === '/readyz') return res.end('{}');
    n.seen.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(`${name}:${Buffer.concat(chunks).toString()}`));
  });
  await new Promise<void>((resolve) => n.server.listen(0, '127.0.0.1', resolve));
  n.url = `http://127.0.0.1:${(n.server.address() as AddressInfo).port}`;
  return n;
}

function close(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}

function call(
  port: number,
  opts: { method?: string; path: string; from?: string; body?: string },
): Promise<{ status: number; region: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        localAddress: opts.from,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            region: res.headers['x-meridian-region'] as string | undefined,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('a gateway in front of regions with several nodes', () => {
  let east1: FakeNode, east2: FakeNode, west1: FakeNode, west2: FakeNode;
  let gateway: Server;
  let port: number;
  let health: HealthChecker;

  beforeEach(async () => {
    [east1, east2, west1, west2] = await Promise.all([
      fakeNode('east1'),
      fakeNode('east2'),
      fakeNode('west1'),
      fakeNode('west2'),
    ]);
    const regions: GatewayRegion[] = [
      {
        name: 'eastus',
        role: 'primary',
        endpoint: east1.url,
        nodes: [east1.url, east2.url],
      },
      {
        name: 'westeurope',
        role: 'replica',
        endpoint: 'http://westeurope.invalid',
        nodes: [west1.url, west2.url],
      },
    ];
    const topology = new Topology({
      regions,
      clients: [{ cidr: '127.0.0.2/32', region: 'westeurope' }],
    });
    health = new HealthChecker(regions, { failuresToDown: 1, timeoutMs: 500 });
    gateway = createServer(createGateway({ topology, health, log: pino({ level: 'silent' }) }));
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    port = (gateway.address() as AddressInfo).port;
  });

  afterEach(async () => {
    health.stop();
    await Promise.all([gateway, east1.server, east2.server, west1.server, west2.server].map(close));
  });

  it("spreads a region's reads across its nodes, never to its endpoint", async () => {
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' });
      expect(r).toMatchObject({ status: 200, region: 'westeurope' });
      bodies.push(r.body);
    }
    expect(bodies.filter((b) => b === 'west1:')).toHaveLength(3);
    expect(bodies.filter((b) => b === 'west2:')).toHaveLength(3);
    expect(east1.seen.concat(east2.seen)).toEqual([]);
  });

  it('sends no read to a dead node and keeps the region in service', async () => {
    await close(west2.server);
    for (let i = 0; i < 6; i++)
      expect(await call(port, { path: `/v2/a/manifests/v${i}`, from: '127.0.0.2' })).toEqual({
        status: 200,
        region: 'westeurope',
        body: 'west1:',
      });
    expect(west1.seen).toHaveLength(6);
    expect(health.isHealthy('westeurope')).toBe(true);
    expect(health.healthyNodes('westeurope')).toEqual([west1.url]);
    const listed = await call(port, { path: '/meridian/v1/gateway/regions' });
    const { regions } = JSON.parse(listed.body) as {
      regions: {
        name: string;
        healthy: boolean;
        nodes: { endpoint: string; healthy: boolean }[];
      }[];
    };
    expect(regions.find((r) => r.name === 'westeurope')).toMatchObject({
      healthy: true,
      nodes: [
        { endpoint: west1.url, healthy: true },
        { endpoint: west2.url, healthy: false },
      ],
    });
  });

  it("moves reads to the next region only when all of the home region's nodes are down", async () => {
    await Promise.all([close(west1.server), close(west2.server)]);
    const r = await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' });
    expect(r.status).toBe(200);
    expect(r.region).toBe('eastus');
    expect(health.isHealthy('westeurope')).toBe(false);
  });

  it("spreads writes across the primary's nodes, with their bodies", async () => {
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await call(port, {
        method: 'PATCH',
        path: '/v2/a/blobs/uploads/u1',
        from: '127.0.0.2',
        body: `chunk${i}`,
      });
      expect(r).toMatchObject({ status: 200, region: 'eastus' });
      bodies.push(r.body);
    }
    expect(bodies).toEqual(['east1:chunk0', 'east2:chunk1', 'east1:chunk2', 'east2:chunk3']);
    expect(west1.seen.concat(west2.seen)).toEqual([]);
  });

  it('gives a write whose node refuses the connection to the next node, body intact', async () => {
    // Not yet known to be dead: no health check has run.
    await close(east1.server);
    for (let i = 0; i < 4; i++)
      expect(
        await call(port, { method: 'PUT', path: '/v2/a/manifests/v1', body: `manifest${i}` }),
      ).toEqual({ status: 200, region: 'eastus', body: `east2:manifest${i}` });
    expect(health.healthyNodes('eastus')).toEqual([east2.url]);
  });
});
