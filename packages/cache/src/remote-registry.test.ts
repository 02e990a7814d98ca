import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { planImage } from './image-plan';
import { RemoteRegistry } from './remote-registry';
import { UpstreamGuard } from './upstream-guard';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((r) =>
    server.listen(0, host, () => r((server.address() as AddressInfo).port)),
  );
}

/** A manifest of one config blob, optionally referring to `subject`. */
function imageOf(name: string, subject?: { digest: string; size: number }) {
  const config = Buffer.from(JSON.stringify({ name }));
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(config),
        size: config.length,
      },
      layers: [],
      ...(subject ? { subject: { mediaType: OCI_INDEX, ...subject } } : {}),
    }),
  );
  return { body, digest: sha(body), config: sha(config) };
}

describe('RemoteRegistry against a registry on loopback', () => {
  const guard = new UpstreamGuard();
  let registry: Server;
  let storage: Server;
  let base = '';
  const seen: string[] = [];
  const storageAuth: (string | undefined)[] = [];
  const blob = Buffer.from('layer bytes, stored elsewhere');

  // An index of two platforms; a signature refers to the index (tag schema only: the registry
  // has no referrers API).
  const amd = imageOf('amd64');
  const arm = imageOf('arm64');
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [amd, arm].map((m) => ({
        mediaType: OCI_MANIFEST,
        digest: m.digest,
        size: m.body.length,
      })),
    }),
  );
  const indexDigest = sha(index);
  const sig = imageOf('signature', { digest: indexDigest, size: index.length });
  const sigIndex = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: sig.digest, size: sig.body.length }],
    }),
  );

  beforeAll(async () => {
    storage = createServer((req, res) => {
      storageAuth.push(req.headers.authorization);
      res.writeHead(200, { 'Content-Length': blob.length });
      res.end(blob);
    });
    const storagePort = await listen(storage, '127.0.0.2');
    const manifests = new Map<string, [Buffer, string]>([
      ['v1', [index, OCI_INDEX]],
      [indexDigest, [index, OCI_INDEX]],
      [amd.digest, [amd.body, OCI_MANIFEST]],
      [arm.digest, [arm.body, OCI_MANIFEST]],
      [sig.digest, [sig.body, OCI_MANIFEST]],
      [`sha256-${indexDigest.slice(7)}`, [sigIndex, OCI_INDEX]],
    ]);
    registry = createServer((req: IncomingMessage, res) => {
      const url = req.url ?? '';
      seen.push(url);
      if (req.headers.authorization !== `Basic ${Buffer.from('ci:secret').toString('base64')}`) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"' });
        return res.end();
      }
      const m = /^\/v2\/lib\/app\/manifests\/(.+)$/.exec(url);
      const found = m && manifests.get(m[1]!);
      if (found) {
        res.writeHead(200, { 'Content-Type': found[1], 'Content-Length': found[0].length });
        return res.end(found[0]);
      }
      if (url === `/v2/lib/app/blobs/${sha(blob)}`) {
        // On to object storage: another origin, which must not get the registry's credentials.
        res.writeHead(307, { Location: `http://127.0.0.2:${storagePort}/bucket/blob?sig=x` });
        return res.end();
      }
      res.writeHead(404);
      res.end();
    });
    base = `http://127.0.0.1:${await listen(registry)}`;
  });
  afterAll(async () => {
    await guard.close();
    await new Promise((r) => registry.close(r));
    await new Promise((r) => storage.close(r));
  });

  it('follows a blob redirect to another origin without sending the credentials there', async () => {
    const remote = new RemoteRegistry({
      baseUrl: base,
      credentials: { username: 'ci', password: 'secret' },
      guard,
    });
    const got = await remote.blob('lib/app', sha(blob));
    expect(got?.size).toBe(blob.length);
    const chunks: Buffer[] = [];
    for await (const c of got!.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks)).toEqual(blob);
    expect(storageAuth).toEqual([undefined]);
    expect(await remote.blob('lib/app', sha(Buffer.from('absent')))).toBeUndefined();
  });

  it('plans an index: platforms before the index, its signature after, each blob once', async () => {
    const remote = new RemoteRegistry({
      baseUrl: base,
      credentials: { username: 'ci', password: 'secret' },
      guard,
    });
    seen.length = 0;
    const plan = await planImage(remote, 'lib/app', 'v1');
    expect(plan.root.digest).toBe(indexDigest);
    expect(plan.manifests.map((m) => m.digest)).toEqual([
      amd.digest,
      arm.digest,
      indexDigest,
      sig.digest,
    ]);
    expect(plan.referrers).toBe(1);
    expect(plan.blobs.map((b) => b.digest)).toEqual([amd.config, arm.config, sig.config]);
    // The registry has no referrers API: asked once, then the tag schema directly.
    expect(seen.filter((u) => u.includes('/referrers/'))).toEqual([
      `/v2/lib/app/referrers/${indexDigest}`,
    ]);
  });
});
