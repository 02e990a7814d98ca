import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import pino from 'pino';
import { createGateway, isWrite } from './gateway';
import { answerClientError } from './errors';
import { classify } from './routing';
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
  opts: {
    method?: string;
    path: string;
    from?: string;
    body?: string;
    headers?: Record<string, string>;
  },
): Promise<{
  status: number;
  region: string | undefined;
  body: string;
  location?: string;
  aborted?: boolean;
}> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        localAddress: opts.from,
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => {});
        res.on('close', () =>
          resolve({
            status: res.statusCode ?? 0,
            region: res.headers['x-meridian-region'] as string | undefined,
            body: Buffer.concat(chunks).toString(),
            location: res.headers.location,
            aborted: !res.complete,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('classify', () => {
  const push = bearer([{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
  const pull = bearer([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  it.each([
    ['HEAD', '/v2/team/app/blobs/sha256:abc', push, 'push-read'],
    ['GET', '/v2/team/app/blobs/sha256:abc', push, 'push-read'],
    ['HEAD', '/v2/team/app/manifests/v1', push, 'push-read'],
    ['HEAD', '/v2/team/app/blobs/sha256:abc', pull, 'blob-check'],
    ['HEAD', '/v2/team/app/blobs/sha256:abc', undefined, 'blob-check'],
    ['HEAD', '/v2/team/app/blobs/sha256:abc', 'Basic b3duZXI6eA==', 'blob-check'],
    ['GET', '/v2/team/app/blobs/sha256:abc', pull, 'read'],
    // push rights on another repository are no push intent here
    ['HEAD', '/v2/team/other/blobs/sha256:abc', push, 'blob-check'],
    ['HEAD', '/v2/team/app/blobs/sha256:abc', 'Bearer not.a-jwt!.x', 'blob-check'],
    ['GET', '/v2/team/app/tags/list', push, 'read'],
    ['POST', '/v2/team/app/blobs/uploads/', pull, 'write'],
  ])('%s %s (%s) → %s', (method, path, auth, expected) => {
    expect(classify(method, path, auth)).toBe(expected);
  });
});

/** The gateway's answer to a write while the primary is down: 405 UNSUPPORTED, saying why. */
function expectPrimaryUnavailable(body: string): void {
  const { errors } = JSON.parse(body) as { errors: { code: string; message: string }[] };
  expect(errors).toHaveLength(1);
  expect(errors[0]!.code).toBe('UNSUPPORTED');
  expect(errors[0]!.message).toMatch(/^the primary region is unavailable;/);
}

/** An unsigned bearer token with these access entries (the gateway only reads the claims). */
function bearer(access: unknown[]): string {
  const part = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `Bearer ${part({ alg: 'ES256' })}.${part({ sub: 'x', access })}.c2ln`;
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
      createGateway({
        topology,
        health,
        log: pino({ level: 'silent' }),
        upstreamTimeoutMs: 300,
        stallTimeoutMs: 1000,
      }),
    );
    gateway.on('clientError', answerClientError);
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

  it('answers 503 UNAVAILABLE when no region can serve, and 405 to writes when the primary is down', async () => {
    await close(east.server);
    const w = await call(port, { method: 'PUT', path: '/v2/a/manifests/v1', body: 'x' });
    expect(w.status).toBe(405);
    expect(JSON.parse(w.body)).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] });
    await Promise.all([close(west.server), close(asia.server)]);
    const r = await call(port, { path: '/v2/a/manifests/v1', from: '127.0.0.2' });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({
      errors: [{ code: 'UNAVAILABLE', message: 'no region is available' }],
    });
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

  it('aborts a response whose region stops sending mid-body instead of hanging the client', async () => {
    west.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': 10_000 });
      res.write(Buffer.alloc(1000)); // …and nothing more, connection left open
    };
    const r = await call(port, { path: '/v2/a/blobs/sha256:abc', from: '127.0.0.2' });
    expect(r).toMatchObject({ status: 200, region: 'westeurope', aborted: true });
    expect(r.body.length).toBe(1000);
  });

  it('aborts a push whose client stops sending its body, without blaming the primary', async () => {
    let got = 0;
    east.handler = (req) => req.on('data', (c: Buffer) => (got += c.length));
    const outcome = await new Promise<string>((resolve) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'PATCH', path: '/v2/a/blobs/uploads/u1', agent: false },
        (res) => resolve(`answered ${res.statusCode}`),
      );
      req.on('error', (err) => resolve(`aborted: ${err.message}`));
      req.setHeader('content-length', 1000);
      req.write(Buffer.alloc(100)); // …and nothing more
    });
    expect(outcome).toMatch(/^aborted/);
    expect(got).toBe(100);
    expect(health.isHealthy('eastus')).toBe(true);
  });

  it('refuses a push whose primary gives no answer within the stall timeout, saying why', async () => {
    east.handler = (req) => req.resume(); // reads the body, never answers
    const w = await call(port, { method: 'PUT', path: '/v2/a/manifests/v1', body: 'x' });
    expect(w.status).toBe(405);
    expectPrimaryUnavailable(w.body);
  });

  it("sends blob existence checks to the primary while it is up; a pusher's never to a replica", async () => {
    const head = { method: 'HEAD', path: '/v2/team/app/blobs/sha256:abc', from: '127.0.0.2' };
    expect(await call(port, head)).toMatchObject({ status: 200, region: 'eastus' });
    // a plain read of the blob stays in the home region
    expect(
      await call(port, { path: '/v2/team/app/blobs/sha256:abc', from: '127.0.0.2' }),
    ).toMatchObject({ region: 'westeurope' });
    await close(east.server);
    await health.checkAll();
    // Without a push token the check is a read: the nearest region answers.
    expect(await call(port, head)).toMatchObject({ status: 200, region: 'westeurope' });
    // A pusher's check is not answered by a replica: "no", so that it starts the upload, whose
    // answer says why it cannot.
    const auth = bearer([{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    const seen = west.seen.length;
    const h = await call(port, { ...head, headers: { authorization: auth } });
    expect(h).toMatchObject({ status: 404, region: undefined, body: '' });
    expect(west.seen.length).toBe(seen);
    const post = await call(port, {
      method: 'POST',
      path: '/v2/team/app/blobs/uploads/',
      headers: { authorization: auth },
      from: '127.0.0.2',
    });
    expect(post.status).toBe(405);
    expectPrimaryUnavailable(post.body);
    // A pusher's other reads may still be served by the regions.
    expect(
      await call(port, {
        path: '/v2/team/app/manifests/v1',
        headers: { authorization: auth },
        from: '127.0.0.2',
      }),
    ).toMatchObject({ status: 200, region: 'westeurope' });
  });

  it('routes an absolute-form request target as its origin-form path; a malformed one is a 400', async () => {
    const raw = (line: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () =>
          s.write(`${line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
        );
        let out = '';
        s.on('data', (c: Buffer) => (out += c.toString()));
        s.on('end', () => resolve(out));
        s.on('error', reject);
      });
    const abs = await raw(`GET http://127.0.0.1:${port}/v2/a/manifests/v1 HTTP/1.1`);
    expect(abs).toMatch(/^HTTP\/1\.1 200/);
    expect(east.seen).toContain('GET /v2/a/manifests/v1');
    const bad = await raw('GET http://user@127.0.0.1/v2/ HTTP/1.1');
    expect(bad).toMatch(/^HTTP\/1\.1 400/);
    expect(bad).toContain(
      '{"errors":[{"code":"UNSUPPORTED","message":"malformed request target"}]}',
    );
    // what Node's own parser refuses gets the same error JSON
    const garbage = await raw('GET /v2/ HTTP/1.1\r\nno colon here');
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect(garbage).toContain(
      '{"errors":[{"code":"UNSUPPORTED","message":"malformed HTTP request"}]}',
    );
  });
});
