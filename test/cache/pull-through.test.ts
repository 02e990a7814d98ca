/**
 * Pull-through cache rules (issue 15) against CNCF Distribution with htpasswd auth, reached
 * through a counting HTTP proxy on loopback (a real forwarder: it counts what reaches the
 * upstream, and can answer 429 the way Docker Hub does). The registry is a two-region cluster.
 */
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basic } from '../helpers/auth-node';
import { meridian } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { startGateProxy, type GateProxy } from '../helpers/gate-proxy';
import { waitFor } from '../helpers/wait';
import {
  Pusher,
  pushSignedIndex,
  signedIndex,
  startDistribution,
  type Distribution,
  type SignedIndex,
} from './upstreams';

const INDEX = 'application/vnd.oci.image.index.v1+json';

/** Forwards to `target`, counting `METHOD /path` answered with anything but 401; `mode` 429 answers every request itself. */
class CountingProxy {
  readonly counts = new Map<string, number>();
  mode: 'pass' | '429' = 'pass';
  private server?: Server;
  url = '';
  constructor(private readonly target: string) {}

  async start(): Promise<this> {
    const t = new URL(this.target);
    this.server = createServer((req, res) => {
      const key = `${req.method} ${(req.url ?? '').split('?')[0]}`;
      // What the upstream served or refused; a 401 challenge (before credentials) is not a fetch.
      res.once('finish', () => {
        if (res.statusCode !== 401) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
      });
      if (this.mode === '429') {
        req.resume();
        res.writeHead(429, { 'Retry-After': '30', 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}');
        return;
      }
      const up = request(
        { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  count(method: string, pathPart: string): number {
    let n = 0;
    for (const [k, v] of this.counts)
      if (k.startsWith(`${method} `) && k.includes(pathPart)) n += v;
    return n;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server?.close(() => r()) ?? r());
  }
}

describe('pull-through cache rules', () => {
  let c: TestCluster;
  let dist: Distribution;
  let proxy: CountingProxy;
  let gate: GateProxy;
  let pusher: Pusher;
  const hot = signedIndex(64 * 1024);
  const big = signedIndex(8 * 1024 * 1024);

  const admin = async (path: string, body: unknown) => {
    const r = await fetch(`${c.primary.url}/meridian/v1/admin${path}`, {
      method: 'POST',
      headers: { Authorization: basic('owner', 'x'), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (r.status !== 201) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  };
  const pull = async (base: string, path: string, accept = INDEX) => {
    const r = await fetch(`${base}${path}`, { headers: { Accept: accept } });
    return {
      status: r.status,
      cache: r.headers.get('x-meridian-cache'),
      digest: r.headers.get('docker-content-digest'),
      bytes: Buffer.from(await r.arrayBuffer()),
    };
  };
  const upstreamHost = () => proxy.url.replace('http://', '');

  beforeAll(async () => {
    [c, dist] = await Promise.all([
      startCluster({
        regions: ['eastus', 'westeurope'],
        upstream: { credentialKey: randomBytes(32).toString('base64') },
      }),
      startDistribution(),
    ]);
    proxy = await new CountingProxy(dist.url).start();
    gate = await startGateProxy(dist.url);
    pusher = new Pusher(dist.url, basic(dist.user, dist.password));
    for (const repo of ['lib/app', 'lib/other', 'lib/fresh', 'lib/limited', 'lib/down'])
      await pushSignedIndex(pusher, repo, 'v1', repo === 'lib/app' ? hot : signedIndex(), true);
    await pushSignedIndex(pusher, 'lib/big', 'v1', big, true);
    await admin('/credential-sets', { name: 'dist', username: dist.user, password: dist.password });
    const made = await meridian(
      [
        'cache',
        'create',
        'mirror',
        '--source',
        `${upstreamHost()}/lib/*`,
        '--target',
        'mirror/*',
        '--credential-set',
        'dist',
        '--tag-ttl',
        '2',
        '--url',
        c.primary.url,
      ],
      { MERIDIAN_PASSWORD: 'x' },
    );
    expect(made.stderr).toBe('');
    expect(JSON.parse(made.stdout)).toMatchObject({ name: 'mirror', tagTtlSeconds: 2 });
    // The same upstream behind a gate that can hold its bytes back.
    const gated = await meridian(
      [
        'cache',
        'create',
        'gated',
        '--source',
        `${gate.url.replace('http://', '')}/lib/*`,
        '--target',
        'gated/*',
        '--credential-set',
        'dist',
        '--url',
        c.primary.url,
      ],
      { MERIDIAN_PASSWORD: 'x' },
    );
    expect(gated.stderr).toBe('');
  });
  afterAll(async () => {
    await gate?.close();
    await proxy?.close();
    await c?.close();
    await dist?.close();
  });

  /** Pulls the whole image (index, platforms, blobs) as a client would; returns each header. */
  async function pullImage(base: string, repo: string, img: SignedIndex): Promise<string[]> {
    const index = await pull(base, `/v2/${repo}/manifests/v1`);
    expect(index.status).toBe(200);
    expect(index.bytes.equals(img.index.bytes)).toBe(true);
    const seen = [index.cache ?? ''];
    for (const m of img.platforms) {
      const r = await pull(base, `/v2/${repo}/manifests/${m.digest}`, m.mediaType);
      expect(r.bytes.equals(m.bytes)).toBe(true);
      seen.push(r.cache ?? '');
      const parsed = JSON.parse(m.bytes.toString()) as {
        config: { digest: string };
        layers: { digest: string }[];
      };
      for (const d of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
        const b = await pull(base, `/v2/${repo}/blobs/${d}`, '*/*');
        expect(b.status).toBe(200);
        expect(b.bytes.equals(img.blobs.find((x) => x.digest === d)!.bytes)).toBe(true);
        seen.push(b.cache ?? '');
      }
    }
    return seen;
  }

  it('20 concurrent cold pulls fetch each blob from the upstream once, and the signature comes along', async () => {
    const headers = await Promise.all(
      Array.from({ length: 20 }, () => pullImage(c.primary.url, 'mirror/app', hot)),
    );
    for (const h of headers) {
      expect(h[0]).toBe('miss');
      // The rest streams from the copy in progress (miss) or from the store once it landed (hit).
      for (const x of h.slice(1)) expect(['hit', 'miss']).toContain(x);
    }
    // Every blob — the platforms' and the signature's — crossed once.
    for (const b of hot.blobs) expect(proxy.count('GET', `/v2/lib/app/blobs/${b.digest}`)).toBe(1);
    expect(proxy.count('GET', '/v2/lib/app/manifests/v1')).toBe(1);

    // Once the copy is stored, the image is ordinary content: every read a hit, no new fetch,
    // and its signature is listed and served like a pushed one.
    await waitFor(async () => {
      const r = await pull(c.primary.url, '/v2/mirror/app/manifests/v1');
      return r.cache === 'hit' || undefined;
    }, 'the copy of mirror/app:v1 to be stored');
    const warm = await pullImage(c.primary.url, 'mirror/app', hot);
    expect(warm.every((x) => x === 'hit')).toBe(true);
    const refs = await pull(c.primary.url, `/v2/mirror/app/referrers/${hot.index.digest}`);
    expect(refs.status).toBe(200);
    const list = JSON.parse(refs.bytes.toString()) as { manifests: { digest: string }[] };
    expect(list.manifests.map((d) => d.digest)).toEqual([hot.signature.digest]);
    const sig = await pull(
      c.primary.url,
      `/v2/mirror/app/manifests/${hot.signature.digest}`,
      hot.signature.mediaType,
    );
    expect(sig.bytes.equals(hot.signature.bytes)).toBe(true);
    for (const b of hot.blobs) expect(proxy.count('GET', `/v2/lib/app/blobs/${b.digest}`)).toBe(1);
  });

  it('a cold pull streams the blob as the upstream sends it, before the rest has arrived', async () => {
    // More than one of the registry's 1 MiB sends, well short of the 8 MiB layer.
    const HELD_AT = 3 * 1024 * 1024;
    gate.hold(HELD_AT);
    try {
      const index = await pull(c.primary.url, '/v2/gated/big/manifests/v1');
      expect(index).toMatchObject({ status: 200, cache: 'miss' });
      expect(index.bytes.equals(big.index.bytes)).toBe(true);
      const platform = big.platforms[0]!;
      const m = await pull(
        c.primary.url,
        `/v2/gated/big/manifests/${platform.digest}`,
        platform.mediaType,
      );
      expect(m.bytes.equals(platform.bytes)).toBe(true);
      const layerDigest = (
        JSON.parse(platform.bytes.toString()) as { layers: { digest: string }[] }
      ).layers[0]!.digest;
      const layer = big.blobs.find((b) => b.digest === layerDigest)!;
      const res = await fetch(`${c.primary.url}/v2/gated/big/blobs/${layerDigest}`);
      expect(res.status).toBe(200);
      const reader: ReadableStreamDefaultReader<Uint8Array> = res.body!.getReader();
      const chunks: Buffer[] = [];
      let received = 0;
      // The first bytes arrive while the upstream's rest is held back.
      while (received === 0) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(Buffer.from(value));
        received += value.length;
      }
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThanOrEqual(HELD_AT);
      await waitFor(async () => gate.held() > 0 || undefined, 'the upstream to be held back');
      gate.release();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(Buffer.from(value));
      }
      expect(Buffer.concat(chunks).equals(layer.bytes)).toBe(true);
    } finally {
      gate.release();
      gate.hold(Infinity);
    }
  });

  it('a tag moved upstream is seen once tagTtl has passed, not before; an unchanged one is revalidated by HEAD', async () => {
    const first = await pull(c.primary.url, '/v2/mirror/fresh/manifests/v1');
    expect(first.cache).toBe('miss');
    // A miss is answered while the image is still being copied: cached means stored.
    await waitFor(async () => {
      const r = await pull(c.primary.url, '/v2/mirror/fresh/manifests/v1');
      return r.cache === 'hit' || undefined;
    }, 'the copy of mirror/fresh:v1 to be stored');
    const moved = signedIndex();
    await pushSignedIndex(pusher, 'lib/fresh', 'v1', moved, false);
    const before = await pull(c.primary.url, '/v2/mirror/fresh/manifests/v1');
    expect(before).toMatchObject({ cache: 'hit', digest: first.digest });
    await new Promise((r) => setTimeout(r, 2500));
    const after = await pull(c.primary.url, '/v2/mirror/fresh/manifests/v1');
    expect(after).toMatchObject({ cache: 'miss', digest: moved.index.digest });
    expect(after.bytes.equals(moved.index.bytes)).toBe(true);

    const gets = proxy.count('GET', '/v2/lib/fresh/manifests/v1');
    await new Promise((r) => setTimeout(r, 2500));
    const again = await pull(c.primary.url, '/v2/mirror/fresh/manifests/v1');
    expect(again).toMatchObject({ cache: 'revalidated', digest: moved.index.digest });
    expect(proxy.count('HEAD', '/v2/lib/fresh/manifests/v1')).toBeGreaterThanOrEqual(1);
    expect(proxy.count('GET', '/v2/lib/fresh/manifests/v1')).toBe(gets);
    // A digest is never revalidated.
    const byDigest = await pull(c.primary.url, `/v2/mirror/fresh/manifests/${moved.index.digest}`);
    expect(byDigest.cache).toBe('hit');
  });

  it('the upstream answering 429: cached tags are served stale, and the upstream is not hammered', async () => {
    expect((await pull(c.primary.url, '/v2/mirror/limited/manifests/v1')).cache).toBe('miss');
    await new Promise((r) => setTimeout(r, 2500));
    proxy.mode = '429';
    try {
      const heads = proxy.count('HEAD', '/v2/lib/limited/');
      for (let i = 0; i < 10; i++) {
        const r = await pull(c.primary.url, '/v2/mirror/limited/manifests/v1');
        expect(r).toMatchObject({ status: 200, cache: 'stale' });
      }
      // One HEAD answered 429; the rule then waits for Retry-After (30 s) before the next.
      expect(proxy.count('HEAD', '/v2/lib/limited/') - heads).toBe(1);
      const uncached = await pull(c.primary.url, '/v2/mirror/limited/manifests/v2');
      expect(uncached.status).toBe(429);
      expect(uncached.bytes.toString()).toContain('cache rule \\"mirror\\"');
    } finally {
      proxy.mode = 'pass';
    }
  });

  it('the upstream stopped: cached tags still pull (stale), uncached ones get a 503 naming the rule', async () => {
    await c.stopNode('eastus');
    await c.startNode('eastus'); // a fresh limiter: the 429 back-off above is the other rule state
    expect((await pull(c.primary.url, '/v2/mirror/down/manifests/v1')).cache).toBe('miss');
    // A miss is answered while the image is still being copied: cached means stored.
    await waitFor(async () => {
      const r = await pull(c.primary.url, '/v2/mirror/down/manifests/v1');
      return r.cache === 'hit' || undefined;
    }, 'the copy of mirror/down:v1 to be stored');
    await dist.stop();
    try {
      await new Promise((r) => setTimeout(r, 2500));
      const r = await pull(c.primary.url, '/v2/mirror/down/manifests/v1');
      expect(r).toMatchObject({ status: 200, cache: 'stale' });
      const cold = await pull(c.primary.url, '/v2/mirror/other/manifests/v1');
      expect(cold.status).toBe(503);
      const body = JSON.parse(cold.bytes.toString()) as {
        errors: { code: string; message: string }[];
      };
      expect(body.errors[0]!.code).toBe('UNAVAILABLE');
      expect(body.errors[0]!.message).toContain('cache rule "mirror"');
    } finally {
      await dist.start();
    }
  });

  it('a replica honours the rule through the primary: the upstream is asked once', async () => {
    await c.stopNode('eastus');
    await c.startNode('eastus'); // past the back-off of the stopped upstream
    const replica = c.replicas[0]!.url;
    const r = await waitFor(async () => {
      const x = await pull(replica, '/v2/mirror/other/manifests/v1');
      return x.status === 200 ? x : undefined;
    }, 'the replica to serve mirror/other:v1');
    expect(JSON.parse(r.bytes.toString())).toMatchObject({ mediaType: INDEX });
    expect(proxy.count('GET', '/v2/lib/other/manifests/v1')).toBe(1);
  });
});
