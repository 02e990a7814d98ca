/**
 * Blob redirects (`s3.redirect`): a node on S3 answers whole-blob GETs with a 307 to a presigned
 * URL of its bucket, so layer bytes go from storage to the client without passing through the
 * node or the gateway; skopeo follows them through the gateway. HEAD, ranges, unknown blobs and
 * filesystem storage are served by the node as before.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { createGateway, HealthChecker, Topology } from '@meridian/gateway';
import { Registry, startNodeServer, type RunningNode } from '@meridian/registry';
import { openStore, type ObjectStore } from '@meridian/storage';
import { createClientSandbox, skopeoCopy, type ClientSandbox } from '../helpers/clients';
import { newStorage, type StorageKind } from '../helpers/node';
import {
  blobsOf,
  buildImage,
  digestOf,
  randomLayer,
  readOciLayout,
  writeOciLayout,
  type Image,
} from '../helpers/oci-layout';
import { requireTestS3 } from '../helpers/s3-env';

jest.setTimeout(180_000);

const REPO = 'redirect/app';
const log = pino({ level: process.env.MERIDIAN_TEST_LOG ?? 'silent' });

interface Node {
  url: string;
  store: ObjectStore;
  close(): Promise<void>;
}

async function startNode(
  kind: StorageKind,
  blobRedirect: { expiresSeconds: number } | undefined,
  location?: string,
): Promise<Node & { location: string }> {
  const storage = location ? undefined : await newStorage(kind);
  const loc = location ?? storage!.location;
  const store = await openStore(loc, { partSize: 5 * 1024 * 1024 });
  const registry = new Registry({ store, blobRedirect });
  const node: RunningNode = await startNodeServer({
    registry,
    log,
    listen: '127.0.0.1:0',
    purgeIntervalMs: 0,
  });
  return {
    url: node.url,
    store,
    location: loc,
    close: async () => {
      await node.close();
      await store.close();
      storage?.cleanup();
    },
  };
}

/** The gateway in front of one primary region. */
async function startGateway(endpoint: string): Promise<{ url: string; close(): Promise<void> }> {
  const regions = [{ name: 'eastus', role: 'primary' as const, endpoint }];
  const health = new HealthChecker(regions);
  const server: Server = createServer(
    createGateway({ topology: new Topology({ regions }), health, log }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('blob redirects to presigned storage URLs', () => {
  let node: Node & { location: string };
  let gateway: { url: string; close(): Promise<void> };
  let sb: ClientSandbox;
  let image: Image;
  const host = () => gateway.url.replace(/^http:\/\//, '');

  beforeAll(async () => {
    node = await startNode('s3', { expiresSeconds: 120 });
    gateway = await startGateway(node.url);
    sb = await createClientSandbox();
    image = buildImage({
      layers: [randomLayer(), randomLayer({ files: 1, fileSize: 256 * 1024 })],
    });
    const layout = join(sb.dir, 'src');
    writeOciLayout(layout, { v1: image });
    await skopeoCopy(sb, `oci:${layout}:v1`, `docker://${host()}/${REPO}:v1`);
  });

  afterAll(async () => {
    await sb?.close();
    await gateway?.close();
    await node?.close();
  });

  it('answers a whole-blob GET with a 307 to the bucket, through the gateway untouched', async () => {
    const layer = image.layers[1]!;
    const res = await fetch(`${gateway.url}/v2/${REPO}/blobs/${layer.digest}`, {
      redirect: 'manual',
    });
    expect(res.status).toBe(307);
    expect(res.headers.get('x-meridian-region')).toBe('eastus');
    expect(res.headers.get('docker-content-digest')).toBe(layer.digest);
    const location = res.headers.get('location') ?? '';
    expect(location.startsWith(requireTestS3().endpoint)).toBe(true);
    expect(location).toMatch(/X-Amz-Signature=/);
    // The bytes come from S3 itself, with no registry in the way.
    const direct = await fetch(location);
    expect(direct.status).toBe(200);
    expect(digestOf(Buffer.from(await direct.arrayBuffer()))).toBe(layer.digest);
  });

  it('serves HEAD, Range requests and unknown or unlinked blobs itself', async () => {
    const layer = image.layers[0]!;
    const head = await fetch(`${node.url}/v2/${REPO}/blobs/${layer.digest}`, {
      method: 'HEAD',
      redirect: 'manual',
    });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(layer.size);
    const range = await fetch(`${node.url}/v2/${REPO}/blobs/${layer.digest}`, {
      headers: { range: 'bytes=0-9' },
      redirect: 'manual',
    });
    expect(range.status).toBe(206);
    expect(Buffer.from(await range.arrayBuffer()).equals(layer.data.subarray(0, 10))).toBe(true);
    const unknown = await fetch(`${node.url}/v2/${REPO}/blobs/sha256:${'0'.repeat(64)}`, {
      redirect: 'manual',
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
    // The bucket holds the blob, but this repository does not link it: no URL handed out.
    const other = await fetch(`${node.url}/v2/other/repo/blobs/${layer.digest}`, {
      redirect: 'manual',
    });
    expect(other.status).toBe(404);
    expect(other.headers.get('location')).toBeNull();
  });

  it('lets skopeo pull through the gateway, following the redirects to S3', async () => {
    const out = sb.path('pull');
    await skopeoCopy(sb, `docker://${host()}/${REPO}:v1`, `oci:${out}:v1`);
    const l = readOciLayout(out);
    expect(l.manifests[0]?.digest).toBe(image.manifest.digest);
    for (const b of blobsOf(image)) expect(digestOf(l.blob(b.digest))).toBe(b.digest);
  });

  it('is off by default: the same bucket without the option streams the bytes', async () => {
    const plain = await startNode('s3', undefined, node.location);
    try {
      const layer = image.layers[1]!;
      const res = await fetch(`${plain.url}/v2/${REPO}/blobs/${layer.digest}`, {
        redirect: 'manual',
      });
      expect(res.status).toBe(200);
      expect(digestOf(Buffer.from(await res.arrayBuffer()))).toBe(layer.digest);
    } finally {
      await plain.close();
    }
  });

  it('is ignored on filesystem storage, which cannot presign', async () => {
    const fsNode = await startNode('fs', { expiresSeconds: 120 });
    try {
      const layer = randomLayer();
      const start = await fetch(`${fsNode.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
      const loc = new URL(start.headers.get('location') ?? '', fsNode.url);
      loc.searchParams.set('digest', layer.digest);
      expect((await fetch(loc, { method: 'PUT', body: layer.data })).status).toBe(201);
      const res = await fetch(`${fsNode.url}/v2/${REPO}/blobs/${layer.digest}`, {
        redirect: 'manual',
      });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(layer.data)).toBe(true);
    } finally {
      await fsNode.close();
    }
  });
});
