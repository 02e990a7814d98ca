import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { buildConnector } from 'undici';
import { RemoteRegistry } from './remote-registry';
import { UpstreamError } from './upstream-error';
import { UpstreamGuard } from './upstream-guard';

describe('upstream address guard: what is refused by default', () => {
  const g = new UpstreamGuard();
  afterAll(() => g.close());

  it('refuses cloud metadata, link-local, unspecified and their IPv4-mapped forms', () => {
    const refused: [string, string][] = [
      ['169.254.169.254', 'a cloud metadata address'],
      ['fd00:ec2::254', 'a cloud metadata address'],
      ['100.100.100.200', 'a cloud metadata address'],
      ['168.63.129.16', 'a cloud metadata address'],
      ['::ffff:169.254.169.254', 'a cloud metadata address'],
      ['64:ff9b::a9fe:a9fe', 'a cloud metadata address'],
      ['169.254.1.1', 'a link-local address'],
      ['fe80::1', 'a link-local address'],
      ['::ffff:169.254.1.1', 'a link-local address'],
      ['0.0.0.0', 'an unspecified address'],
      ['::', 'an unspecified address'],
      ['::ffff:0.0.0.0', 'an unspecified address'],
      ['224.0.0.1', 'a multicast address'],
      ['255.255.255.255', 'a reserved address'],
    ];
    for (const [a, why] of refused) expect([a, g.addresses.refusal(a)]).toEqual([a, why]);
  });

  it('allows what a self-hosted registry pulls from: public, private networks, loopback', () => {
    for (const a of [
      '93.184.216.34',
      '2606:4700::1111',
      '10.1.2.3',
      '172.16.5.5',
      '192.168.1.10',
      '100.64.0.1',
      'fd12:3456::1',
      '127.0.0.1',
      '::1',
      '::ffff:10.0.0.1',
      '64:ff9b::808:808',
    ])
      expect([a, g.addresses.permits(a)]).toEqual([a, true]);
  });

  it('turns private networks and loopback off, and opens single addresses or ranges', () => {
    const strict = new UpstreamGuard({
      allowPrivateNetworks: false,
      allowLoopback: false,
      allowAddresses: ['10.20.0.0/16', '169.254.10.0/24'],
    });
    expect(strict.addresses.refusal('127.0.0.1')).toBe('a loopback address');
    expect(strict.addresses.refusal('::ffff:127.0.0.1')).toBe('a loopback address');
    expect(strict.addresses.refusal('192.168.1.1')).toBe('a private-network address');
    expect(strict.addresses.permits('10.20.3.4')).toBe(true);
    expect(strict.addresses.permits('10.21.3.4')).toBe(false);
    expect(strict.addresses.permits('169.254.10.9')).toBe(true);
    expect(strict.addresses.refusal('169.254.169.254')).toBe('a cloud metadata address');
    expect(() => new UpstreamGuard({ allowAddresses: ['not-an-ip'] })).toThrow(/not-an-ip/);
    return strict.close();
  });

  it('refuses a literal metadata address before anything is dialled', async () => {
    const dialled: string[] = [];
    const connect: buildConnector.connector = (opts, cb) => {
      dialled.push(opts.hostname);
      cb(new Error('not dialled in this test'), null);
    };
    const guard = new UpstreamGuard({ connect });
    for (const base of [
      'http://169.254.169.254',
      'http://[fd00:ec2::254]',
      'http://[::ffff:a9fe:a9fe]',
    ]) {
      const remote = new RemoteRegistry({ baseUrl: base, guard });
      const err = await remote.manifest('lib/app', 'v1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect((err as UpstreamError).kind).toBe('refused');
      expect((err as UpstreamError).message).toMatch(
        /connection refused by the upstream address guard: .* is a cloud metadata address \(an operator can allow it with upstream\.allowAddresses\)$/,
      );
    }
    expect(dialled).toEqual([]);
    await guard.close();
  });
});

/**
 * Connect-time checks against servers on loopback. The guard allows 127.0.0.1 only, so 127.0.0.2
 * stands for a forbidden address: a redirect hop or a token realm there must never be reached.
 */
describe('upstream address guard at connect time', () => {
  let upstream: Server;
  let forbidden: Server;
  let up = '';
  let port = 0;
  let forbiddenPort = 0;
  const forbiddenHits: string[] = [];
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [] }));
  const blob = Buffer.from('layer bytes');
  const blobDigest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const guard = new UpstreamGuard({
    allowLoopback: false,
    allowAddresses: ['127.0.0.1'],
    resolve: (host, _family, cb) =>
      host === 'registry.test'
        ? cb(null, [{ address: '127.0.0.1', family: 4 }])
        : host === 'rebound.test'
          ? cb(null, [{ address: '127.0.0.2', family: 4 }])
          : cb(
              Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }),
              [],
            ),
  });

  beforeAll(async () => {
    forbidden = createServer((req, res) => {
      forbiddenHits.push(`${req.method} ${req.url}`);
      res.end('{"token":"x"}');
    });
    await new Promise<void>((r) => forbidden.listen(0, '127.0.0.2', r));
    forbiddenPort = (forbidden.address() as AddressInfo).port;
    const elsewhere = `http://127.0.0.2:${forbiddenPort}`;
    upstream = createServer((req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/lib/app/manifests/v1') {
        res.writeHead(200, {
          'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
          'Content-Length': manifest.length,
        });
        res.end(manifest);
      } else if (url === `/v2/lib/app/blobs/${blobDigest}`) {
        res.writeHead(307, { Location: `http://127.0.0.1:${port}/storage/blob` });
        res.end();
      } else if (url === '/storage/blob') {
        res.writeHead(200, { 'Content-Length': blob.length });
        res.end(blob);
      } else if (url === `/v2/redirected/app/blobs/${blobDigest}`) {
        res.writeHead(307, { Location: `${elsewhere}/storage/blob` });
        res.end();
      } else if (url === `/v2/rebound/app/blobs/${blobDigest}`) {
        res.writeHead(302, { Location: `http://rebound.test:${forbiddenPort}/storage/blob` });
        res.end();
      } else if (url.startsWith('/v2/token/app/')) {
        res.writeHead(401, {
          'WWW-Authenticate': `Bearer realm="${elsewhere}/token",service="registry"`,
        });
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    port = (upstream.address() as AddressInfo).port;
    up = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await guard.close();
    await new Promise((r) => upstream.close(r));
    await new Promise((r) => forbidden.close(r));
  });

  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e as UpstreamError,
    );

  it('reads an allowed upstream, by address or by a name resolving to an allowed address, redirects included', async () => {
    for (const base of [up, `http://registry.test:${port}`]) {
      const remote = new RemoteRegistry({ baseUrl: base, guard });
      expect((await remote.manifest('lib/app', 'v1'))?.bytes).toEqual(manifest);
      const b = await remote.blob('lib/app', blobDigest);
      const chunks: Buffer[] = [];
      for await (const c of b!.body) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks)).toEqual(blob);
    }
  });

  it('refuses a redirect hop to a forbidden address, and a hop to a name that resolves to one', async () => {
    const remote = new RemoteRegistry({ baseUrl: up, guard });
    const hop = await refusal(remote.blob('redirected/app', blobDigest));
    expect(hop?.kind).toBe('refused');
    expect(hop?.message).toBe(
      `127.0.0.1:${port}: connection refused by the upstream address guard: 127.0.0.2 is a loopback address (an operator can allow it with upstream.allowAddresses)`,
    );
    const rebound = await refusal(remote.blob('rebound/app', blobDigest));
    expect(rebound?.kind).toBe('refused');
    expect(rebound?.message).toContain('rebound.test resolves to 127.0.0.2, a loopback address');
    expect(forbiddenHits).toEqual([]);
  });

  it('refuses the token realm a challenge names when it is a forbidden address', async () => {
    const remote = new RemoteRegistry({ baseUrl: up, guard });
    const err = await refusal(remote.manifest('token/app', 'v1'));
    expect(err?.kind).toBe('refused');
    expect(err?.toOci('cache rule "hub": ').message).toBe(
      `cache rule "hub": 127.0.0.1:${port}: connection refused by the upstream address guard: 127.0.0.2 is a loopback address (an operator can allow it with upstream.allowAddresses)`,
    );
    expect(forbiddenHits).toEqual([]);
  });

  it('refuses a base URL whose name resolves to a forbidden address', async () => {
    const remote = new RemoteRegistry({ baseUrl: `http://rebound.test:${forbiddenPort}`, guard });
    const err = await refusal(remote.manifest('lib/app', 'v1'));
    expect(err?.kind).toBe('refused');
    expect(forbiddenHits).toEqual([]);
  });
});
