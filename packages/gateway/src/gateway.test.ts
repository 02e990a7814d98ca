import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createGateway, isWrite } from './gateway';
import { HealthChecker } from './health';
import { Topology, type GatewayRegion } from './topology';

describe('isWrite', () => {
  it.each([
    ['GET', '/v2/a/b/manifests/v1', false],
    ['HEAD', '/v2/a/b/blobs/sha256:abc', false],
    ['GET', '/v2/a/tags/list?n=10', false],
    ['GET', '/v2/_catalog', false],
    ['GET', '/v2/', false],
    ['GET', '/v2/a/referrers/sha256:abc', false],
    // an upload session lives on the primary, even its status GET
    ['GET', '/v2/a/blobs/uploads/2f0c', true],
    ['HEAD', '/v2/a/blobs/uploads/2f0c?_state=x', true],
    ['POST', '/v2/a/blobs/uploads/', true],
    ['POST', '/v2/a/blobs/uploads/?mount=sha256:abc&from=b', true],
    ['PATCH', '/v2/a/blobs/uploads/2f0c', true],
    ['PUT', '/v2/a/blobs/uploads/2f0c?digest=sha256:abc', true],
    ['PUT', '/v2/a/manifests/v1', true],
    ['DELETE', '/v2/a/manifests/sha256:abc', true],
    ['DELETE', '/v2/a/blobs/sha256:abc', true],
    ['OPTIONS', '/v2/', true],
    // logins are served by every region: docker login's POST is not a write
    ['POST', '/oauth2/token', false],
    ['GET', '/oauth2/token?service=meridian&scope=repository:a:pull', false],
  ])('%s %s → write %s', (method, path, expected) => {
    expect(isWrite(method, path)).toBe(expected);
  });
});

/** A fake region: answers every request with its name, or what `handler` says. */
interface FakeRegion {
  name: string;
  url: string;
  seen: string[];
  server: Server;
  handler?: (req: IncomingMessage, res: import('node:http').ServerResponse) => void;
}

async function fakeRegion(name: string): Promise<FakeRegion> {
  const r: FakeRegion = { name, url: '', seen: [], server: createServer() };
  r.server.on('request', (req: IncomingMessage, res) => {
    r.seen.push(`${req.method} ${req.url}`);
    if (r.handler) return r.handler(req, res);
    if (req.url === '/readyz') return res.end('{}');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${name}:${Buffer.concat(chunks).toString()}`);
    });
  });
  await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}`;
  return r;
}

function close(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}

/** One request to the gateway from a given local address (the client's "location"). */
function call(
  port: number,
  opts: { method?: string; path: string; from?: string; body?: string },
): Promise<{ status: number; region: string | undefined; body: string; location?: string }> {
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
            location: res.headers.location,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('createGateway', () => {
  let east: FakeRegion, west: FakeRegion, asia: FakeRegion;
  let gateway: Server;
  let port: number;
  let health: HealthChecker;

  beforeEach(async () => {
    [east, west, asia] = await Promise.all([
      fakeRegion('eastus'),
      fakeRegion('westeurope'),
      fakeRegion('southeastasia'),
    ]);
    const regions: GatewayRegion[] = [
      { name: 'eastus', role: 'primary', endpoint: east.url },
      { name: 'westeurope', role: 'replica', endpoint: west.url },
      { name: 'southeastasia', role: 'replica', endpoint: asia.url },
    ];
    const topology = new Topology({
      regions,
      clients: [
        { cidr: '127.0.0.2/32', region: 'westeurope' },
        { cidr: '127.0.0.3/32', region: 'southeastasia' },
      ],
      preference: { westeurope: ['westeurope', 'southeastasia', 'eastus'] },
    });
    health = new HealthChecker(regions, { failuresToDown: 1, timeoutMs: 500 });
    gateway = createServer(
      createGateway({ topology, health, log: pino({ level: 'silent' }), upstreamTimeoutMs: 300 }),
    );
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    port = (gateway.address() as AddressInfo).port;
  });

  afterEach(async () => {
    health.stop();
    await Promise.all([gateway, east.server, west.server, asia.server].map(close));
  });

  it("sends reads to the client's home region and says so", async () => {
    const r = await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' });
    expect(r).toMatchObject({ status: 200, region: 'westeurope', body: 'westeurope:' });
    expect(await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.3' })).toMatchObject({
      region: 'southeastasia',
    });
    expect(await call(port, { path: '/v2/a/manifests/v1' })).toMatchObject({ region: 'eastus' });
  });

  it('passes repeated headers through as separate lines (two WWW-Authenticate challenges)', async () => {
    east.handler = (_req, res) => {
      res.setHeader('WWW-Authenticate', [
        'Bearer realm="http://x/oauth2/token"',
        'Basic realm="meridian"',
      ]);
      res.statusCode = 401;
      res.end();
    };
    const raw = await new Promise<string[]>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => {
        res.resume();
        resolve(res.rawHeaders);
      })
        .on('error', reject)
        .end();
    });
    const challenges = raw.filter(
      (_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'www-authenticate',
    );
    expect(challenges).toEqual(['Bearer realm="http://x/oauth2/token"', 'Basic realm="meridian"']);
  });

  it('sends writes and upload sessions to the primary, body included', async () => {
    const put = await call(port, {
      method: 'PUT',
      path: '/v2/a/manifests/v1',
      from: '127.0.0.2',
      body: 'manifest-bytes',
    });
    expect(put).toMatchObject({ status: 200, region: 'eastus', body: 'eastus:manifest-bytes' });
    const status = await call(port, { path: '/v2/a/blobs/uploads/u1', from: '127.0.0.3' });
    expect(status.region).toBe('eastus');
    expect(west.seen).toEqual([]);
    expect(asia.seen).toEqual([]);
  });

  it('moves reads to the next region in preference order when home is down, and back', async () => {
    await close(west.server);
    const r = await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' });
    expect(r).toMatchObject({ status: 200, region: 'southeastasia' });
    expect(health.isHealthy('westeurope')).toBe(false);
    // the region comes back on the same port (answering and recording requests), but without a
    // health check it stays marked unhealthy
    const revived = createServer();
    for (const l of west.server.listeners('request')) revived.on('request', l as () => void);
    await new Promise<void>((resolve) =>
      revived.listen(Number(new URL(west.url).port), '127.0.0.1', resolve),
    );
    west.server = revived;
    // later reads skip the unhealthy region without trying it
    expect(await call(port, { path: '/v2/b/manifests/v1', from: '127.0.0.2' })).toMatchObject({
      region: 'southeastasia',
    });
    expect(west.seen).toEqual([]);
    // one good health check restores it
    await health.checkAll();
    expect(health.isHealthy('westeurope')).toBe(true);
    expect(await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' })).toMatchObject({
      region: 'westeurope',
    });
  });

  it('marks a region down when /readyz fails and skips it', async () => {
    west.handler = (_req, res) => {
      res.writeHead(503).end('{"status":"unavailable"}');
    };
    await health.checkAll();
    expect(health.isHealthy('westeurope')).toBe(false);
    west.handler = undefined;
    expect(await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' })).toMatchObject({
      region: 'southeastasia',
    });
  });

  it('moves a read on when the home region accepts but does not answer (hung), not a push', async () => {
    const hung: import('node:http').ServerResponse[] = [];
    west.handler = (_req, res) => void hung.push(res);
    const started = Date.now();
    const r = await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' });
    expect(r).toMatchObject({ status: 200, region: 'southeastasia' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(health.isHealthy('westeurope')).toBe(false);
    // A push to a slow primary is waited for: its body cannot be replayed elsewhere.
    east.handler = (req, res) => {
      req.resume();
      setTimeout(() => res.end('eastus:slow'), 600);
    };
    const put = await call(port, { method: 'PUT', path: '/v2/a/manifests/v1', body: 'x' });
    expect(put).toMatchObject({ status: 200, region: 'eastus', body: 'eastus:slow' });
    for (const res of hung) res.end();
  });

  it('answers 503 UNAVAILABLE when no region can serve, and for writes when the primary is down', async () => {
    await close(east.server);
    const w = await call(port, { method: 'PUT', path: '/v2/a/manifests/v1', body: 'x' });
    expect(w.status).toBe(503);
    expect(JSON.parse(w.body)).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
    await Promise.all([close(west.server), close(asia.server)]);
    const r = await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' });
    expect(r.status).toBe(503);
  });

  it("passes a region's 307 to presigned storage through untouched", async () => {
    west.handler = (_req, res) => {
      res.writeHead(307, { location: 'http://s3.example/bucket/blobs/x?X-Amz-Signature=abc' });
      res.end();
    };
    const r = await call(port, { path: '/v2/a/blobs/sha256:abc', from: '127.0.0.2' });
    expect(r).toMatchObject({
      status: 307,
      region: 'westeurope',
      location: 'http://s3.example/bucket/blobs/x?X-Amz-Signature=abc',
    });
  });
});
