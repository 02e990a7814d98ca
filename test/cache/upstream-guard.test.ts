/**
 * The upstream address guard (SSRF) of imports and cache rules, end to end. The node allows
 * loopback only at 127.0.0.2 (`allowLoopback: false`, `allowAddresses: ['127.0.0.2']`), so
 * 127.0.0.1 — and `localhost`, which resolves to it — stand for a forbidden address while every
 * packet stays on loopback. The allowed upstream is a front on 127.0.0.2 that forwards to CNCF
 * Distribution, and can redirect a blob, or name a token realm, at a forbidden address where a
 * counting server notes whatever reaches it.
 */
import { createServer, request, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { basic } from '../helpers/auth-node';
import { meridian } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import {
  Pusher,
  pushSignedIndex,
  signedIndex,
  startDistribution,
  type Distribution,
} from './upstreams';

const INDEX = 'application/vnd.oci.image.index.v1+json';

describe('upstream address guard (SSRF) for imports and cache rules', () => {
  let c: TestCluster;
  let dist: Distribution;
  let front: Server;
  let forbidden: Server;
  let frontHost = '';
  let forbiddenPort = 0;
  const forbiddenHits: string[] = [];
  const img = signedIndex();
  /** Blobs no other repository holds, so a cache fill must fetch them (not link them). */
  const other = signedIndex();

  beforeAll(async () => {
    [c, dist] = await Promise.all([
      startCluster({
        regions: ['eastus'],
        upstream: { allowLoopback: false, allowAddresses: ['127.0.0.2'] },
      }),
      startDistribution(),
    ]);
    await pushSignedIndex(
      new Pusher(dist.url, basic(dist.user, dist.password)),
      'lib/app',
      'v1',
      img,
      false,
    );
    await pushSignedIndex(
      new Pusher(dist.url, basic(dist.user, dist.password)),
      'lib/other',
      'v1',
      other,
      false,
    );
    forbidden = createServer((req, res) => {
      forbiddenHits.push(`${req.method} ${req.url}`);
      res.end('{"token":"stolen"}');
    });
    await new Promise<void>((r) => forbidden.listen(0, '127.0.0.1', r));
    forbiddenPort = (forbidden.address() as AddressInfo).port;
    const d = new URL(dist.url);
    front = createServer((req, res) => {
      const url = req.url ?? '';
      const m = /^\/v2\/(lib|redir|tok)\/(.+)$/.exec(url);
      if (m?.[1] === 'tok') {
        res.writeHead(401, {
          'WWW-Authenticate': `Bearer realm="http://localhost:${forbiddenPort}/token",service="front"`,
        });
        res.end();
        return;
      }
      if (m?.[1] === 'redir' && url.includes('/blobs/')) {
        res.writeHead(307, { Location: `http://127.0.0.1:${forbiddenPort}/bucket/${m[2]}` });
        res.end();
        return;
      }
      // Anything else is Distribution's lib/*, the front logging in for the caller.
      const up = request(
        {
          host: d.hostname,
          port: d.port,
          method: req.method,
          path: m ? `/v2/lib/${m[2]}` : url,
          headers: { ...req.headers, host: d.host, authorization: basic(dist.user, dist.password) },
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.2', r));
    frontHost = `127.0.0.2:${(front.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await c?.close();
    await dist?.close();
    await new Promise((r) => front?.close(r));
    await new Promise((r) => forbidden?.close(r));
  });

  const owner = basic('owner', 'x');
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${c.primary.url}/meridian/v1/admin${path}`, {
      method,
      headers: { Authorization: owner, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const imported = async (source: string, image: string) => {
    const start = await api('POST', '/import', { source, images: [image] });
    expect(start.status).toBe(202);
    return waitFor(async () => {
      const r = await api('GET', `/import/${start.body.id as string}`);
      return r.body.status === 'succeeded' || r.body.status === 'failed' ? r.body : undefined;
    }, `import from ${source}`);
  };
  const pull = async (path: string) => {
    const r = await fetch(`${c.primary.url}${path}`, { headers: { Accept: INDEX } });
    return { status: r.status, body: await r.text() };
  };
  /** The first OCI error of a response body. */
  const ociError = (body: unknown) =>
    (typeof body === 'string'
      ? (JSON.parse(body) as { errors: unknown[] })
      : (body as { errors: unknown[] })
    ).errors[0] as {
      code: string;
      message: string;
    };
  const catalog = async () =>
    ((await (await fetch(`${c.primary.url}/v2/_catalog`)).json()) as { repositories: string[] })
      .repositories;
  const refusedBy = (host: string, reason: string) =>
    `${host}: connection refused by the upstream address guard: ${reason} (an operator can allow it with upstream.allowAddresses)`;

  it('an allowed address is an upstream like any other: import and cache rule', async () => {
    const job = await imported(`${frontHost}/lib/app:v1`, 'ok/app:v1');
    expect(job.error).toBeUndefined();
    expect(job.status).toBe('succeeded');
    expect(await pull('/v2/ok/app/manifests/v1')).toEqual({
      status: 200,
      body: img.index.bytes.toString(),
    });
    expect(
      (
        await api('POST', '/cache-rules', {
          name: 'lib',
          source: `${frontHost}/lib/*`,
          target: 'mirror/*',
        })
      ).status,
    ).toBe(201);
    expect((await pull('/v2/mirror/app/manifests/v1')).status).toBe(200);
  });

  it('a metadata or link-local address is refused when the import or rule is made: 400, nothing started', async () => {
    const r = await api('POST', '/import', { source: '169.254.169.254/lib/app:v1' });
    expect(r.status).toBe(400);
    expect(ociError(r.body).message).toBe(
      '"source": 169.254.169.254: 169.254.169.254 is a cloud metadata address, refused as an upstream (an operator can allow it with upstream.allowAddresses)',
    );
    expect((await api('GET', '/import')).body).not.toContainEqual(
      expect.objectContaining({ source: expect.stringContaining('169.254') as unknown }),
    );
    const made = await meridian(
      [
        'cache',
        'create',
        'meta',
        '--source',
        '169.254.170.2/lib/*',
        '--target',
        'meta/*',
        '--url',
        c.primary.url,
      ],
      { MERIDIAN_PASSWORD: 'x' },
    );
    expect(made.code).toBe(1);
    expect(made.stderr).toContain(
      '169.254.170.2 is a cloud metadata address, refused as an upstream',
    );
    const linkLocal = await api('POST', '/cache-rules', {
      name: 'll',
      source: '169.254.7.7:5000/lib/*',
      target: 'll/*',
    });
    expect(linkLocal.status).toBe(400);
    expect(ociError(linkLocal.body).message).toContain('169.254.7.7 is a link-local address');
    expect((await api('GET', '/cache-rules')).body).not.toContainEqual(
      expect.objectContaining({ name: 'meta' }),
    );
  });

  it('an import from a name that resolves to a forbidden address fails at connect time and stores nothing', async () => {
    const job = await imported(`localhost:${forbiddenPort}/lib/app:v1`, 'named/app:v1');
    expect(job.status).toBe('failed');
    expect(job.error).toBe(
      refusedBy(
        `localhost:${forbiddenPort}`,
        'localhost resolves to 127.0.0.1, a loopback address',
      ),
    );
    expect((await pull('/v2/named/app/manifests/v1')).status).toBe(404);
    expect(await catalog()).not.toContain('named/app');
    expect(forbiddenHits).toEqual([]);
  });

  it('a blob redirected to a forbidden address is refused with an error naming the rule, and nothing is stored', async () => {
    expect(
      (
        await api('POST', '/cache-rules', {
          name: 'redir',
          source: `${frontHost}/redir/*`,
          target: 'redir/*',
        })
      ).status,
    ).toBe(201);
    // The manifests come from the front (allowed) and are answered once the image is planned;
    // its blobs are where the front redirects to a forbidden address.
    expect((await pull('/v2/redir/other/manifests/v1')).body).toBe(other.index.bytes.toString());
    for (const b of other.blobs) {
      const r = await fetch(`${c.primary.url}/v2/redir/other/blobs/${b.digest}`);
      expect(r.status).toBe(403);
      expect(ociError(await r.text())).toEqual({
        code: 'DENIED',
        message: `cache rule "redir": ${refusedBy(frontHost, '127.0.0.1 is a loopback address')}`,
      });
    }
    expect(forbiddenHits).toEqual([]);
    expect(await catalog()).not.toContain('redir/other');
    expect(existsSync(join(c.primary.storage, 'repositories/redir/other'))).toBe(false);
    expect(existsSync(join(c.primary.storage, 'repositories/mirror/app'))).toBe(true); // filled above
  });

  it('a token realm at a forbidden address is never asked: the pull fails naming the rule', async () => {
    expect(
      (
        await api('POST', '/cache-rules', {
          name: 'tok',
          source: `${frontHost}/tok/*`,
          target: 'tok/*',
        })
      ).status,
    ).toBe(201);
    const r = await pull('/v2/tok/app/manifests/v1');
    expect(r.status).toBe(403);
    expect(ociError(r.body)).toEqual({
      code: 'DENIED',
      message: `cache rule "tok": ${refusedBy(frontHost, 'localhost resolves to 127.0.0.1, a loopback address')}`,
    });
    expect(forbiddenHits).toEqual([]);
    expect(await catalog()).not.toContain('tok/app');
  });
});
