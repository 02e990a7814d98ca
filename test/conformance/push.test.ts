/**
 * The conformance suite's "Push" workflow (distribution-spec conformance/02_push_test.go), in order:
 * streamed, monolithic and chunked blob uploads, cross-repository mounts (with and without the
 * automatic cross-mount variant), manifest uploads and teardown. Then the newer suite's blob API
 * variants: chunked with the last chunk in the PUT, out-of-order chunks recovered with a status
 * GET, bad digests on every upload method, empty blobs, sha512, cancelled uploads.
 */
import { randomBytes } from 'node:crypto';
import { startTestNode, type StorageKind, type TestNode } from '../helpers/node';
import { RegistryClient, expectOciError, location, type HttpResponse } from '../helpers/http';
import {
  blobOf,
  configBlob,
  dockerManifest,
  emptyJson,
  image,
  imageIndex,
  imageManifest,
  MediaTypes,
  randomBlob,
  type DigestAlgorithm,
  type ImageBlob,
  type Manifest,
} from '../helpers/images';

const OCTET = { 'Content-Type': 'application/octet-stream' };

describe.each<StorageKind>(['fs', 's3'])('push workflow (%s storage)', (storage) => {
  let node: TestNode;
  let c: RegistryClient;
  const repo = 'conformance/push';
  const crossRepo = `conformance-${randomBytes(4).toString('hex')}`;

  // The suite's fixtures: a random blob A, a 42-byte blob B sent in two chunks, configs and a layer.
  const blobA = randomBlob(42);
  const blobB = randomBlob(42);
  const chunk1 = blobB.bytes.subarray(0, 22);
  const chunk2 = blobB.bytes.subarray(22);
  const chunk1Range = `0-${chunk1.length - 1}`;
  const chunk2Range = `${chunk1.length}-${blobB.size - 1}`;
  const config = configBlob();
  const layer = randomBlob(100, MediaTypes.ociLayerGzip);
  const manifest = imageManifest({ config, layers: [layer], indent: '\t' });
  const noLayers = imageManifest({ config, layers: [], omitMediaType: true, indent: '\t' });
  const dummyDigest = blobOf('hello world').digest;

  beforeAll(async () => {
    node = await startTestNode({ storage });
    c = new RegistryClient(node.url);
  });
  afterAll(async () => {
    await node?.close();
  });

  describe('blob upload streamed', () => {
    let session: HttpResponse;
    it('PATCH with the blob in the body yields 202 with Location and Range', async () => {
      const post = await c.startUpload(repo);
      expect(post.status).toBe(202);
      expect(location(post)).toMatch(new RegExp(`^/v2/${repo}/blobs/uploads/[0-9a-f-]{36}$`));
      session = await c.patch(location(post), { headers: OCTET, body: blobA.bytes });
      expect(session.status).toBe(202);
      expect(location(session)).toBe(location(post));
      expect(session.header('range')).toBe(`0-${blobA.size - 1}`);
    });

    it('PUT to the session URL with the digest yields 201 with the blob Location', async () => {
      const put = await c.put(location(session), {
        query: { digest: blobA.digest },
        headers: OCTET,
      });
      expect(put.status).toBe(201);
      expect(location(put)).toBe(`/v2/${repo}/blobs/${blobA.digest}`);
      expect(put.header('docker-content-digest')).toBe(blobA.digest);
      const get = await c.get(location(put));
      expect(get.status).toBe(200);
      expect(get.body.equals(blobA.bytes)).toBe(true);
    });
  });

  describe('blob upload monolithic', () => {
    it('GET of a nonexistent blob yields 404 BLOB_UNKNOWN', async () => {
      expectOciError(await c.get(`/v2/${repo}/blobs/${dummyDigest}`), 404, 'BLOB_UNKNOWN');
    });

    it('POST with digest and blob yields 201 with Location (single-request upload)', async () => {
      const post = await c.startUpload(repo, {
        query: { digest: config.digest },
        headers: OCTET,
        body: config.bytes,
      });
      expect(post.status).toBe(201);
      expect(location(post)).toBe(`/v2/${repo}/blobs/${config.digest}`);
      expect(post.header('docker-content-digest')).toBe(config.digest);
    });

    it('GET of the blob from the single POST yields 200 with its bytes', async () => {
      const get = await c.get(`/v2/${repo}/blobs/${config.digest}`);
      expect(get.status).toBe(200);
      expect(get.body.equals(config.bytes)).toBe(true);
      expect(get.header('docker-content-digest')).toBe(config.digest);
      expect(get.header('content-length')).toBe(String(config.size));
    });

    it('POST without a body yields a session (202, Location, Range 0-0)', async () => {
      const post = await c.startUpload(repo);
      expect(post.status).toBe(202);
      expect(location(post)).toContain(`/v2/${repo}/blobs/uploads/`);
      expect(post.header('range')).toBe('0-0');
      expect(post.header('docker-upload-uuid')).toBe(location(post).split('/').pop());
    });

    it('PUT of a whole blob to a new session yields 201 and the blob is served', async () => {
      const put = await c.uploadBlob(repo, config);
      expect(put.status).toBe(201);
      expect(location(put)).toBe(`/v2/${repo}/blobs/${config.digest}`);
      expect((await c.get(location(put))).body.equals(config.bytes)).toBe(true);
    });

    it('PUT upload of a layer blob yields 201 and GET yields 200', async () => {
      const put = await c.uploadBlob(repo, layer);
      expect(put.status).toBe(201);
      expect(location(put)).not.toBe('');
      const get = await c.get(`/v2/${repo}/blobs/${layer.digest}`);
      expect(get.status).toBe(200);
      expect(get.body.equals(layer.bytes)).toBe(true);
    });
  });

  describe('blob upload chunked', () => {
    let session = '';
    it('an out-of-order first chunk yields 416', async () => {
      const post = await c.startUpload(repo, { headers: { 'Content-Length': 0 } });
      expect(post.status).toBe(202);
      const res = await c.patch(location(post), {
        headers: { ...OCTET, 'Content-Range': chunk2Range },
        body: chunk2,
      });
      expectOciError(res, 416, 'BLOB_UPLOAD_INVALID');
    });

    it('PATCH with the first chunk yields 202 and Range of that chunk', async () => {
      const post = await c.startUpload(repo, { headers: { 'Content-Length': 0 } });
      session = location(post);
      const res = await c.patch(session, {
        headers: { ...OCTET, 'Content-Range': chunk1Range },
        body: chunk1,
      });
      expect(res.status).toBe(202);
      expect(res.header('range')).toBe(chunk1Range);
      expect(location(res)).toBe(session);
    });

    it('retrying the previous chunk yields 416', async () => {
      const res = await c.patch(session, {
        headers: { ...OCTET, 'Content-Range': chunk1Range },
        body: chunk1,
      });
      expectOciError(res, 416, 'BLOB_UPLOAD_INVALID');
    });

    it('GET on the upload yields 204 with Location and the Range received so far', async () => {
      const res = await c.get(session);
      expect(res.status).toBe(204);
      expect(res.body.length).toBe(0);
      expect(location(res)).toBe(session);
      expect(res.header('range')).toBe(chunk1Range);
    });

    it('PATCH with the second chunk yields 202 with Location', async () => {
      const res = await c.patch(session, {
        headers: { ...OCTET, 'Content-Range': chunk2Range },
        body: chunk2,
      });
      expect(res.status).toBe(202);
      expect(res.header('range')).toBe(`0-${blobB.size - 1}`);
      session = location(res);
    });

    it('PUT with the digest and no body yields 201; the blob is the two chunks joined', async () => {
      const res = await c.put(session, {
        query: { digest: blobB.digest },
        headers: { ...OCTET, 'Content-Length': 0 },
      });
      expect(res.status).toBe(201);
      expect(location(res)).toBe(`/v2/${repo}/blobs/${blobB.digest}`);
      const get = await c.get(location(res));
      expect(get.body.equals(blobB.bytes)).toBe(true);
      // The session is gone once committed.
      expectOciError(await c.get(session), 404, 'BLOB_UPLOAD_UNKNOWN');
    });
  });

  describe('cross-repository blob mount', () => {
    let mountResponse: HttpResponse;
    it('mount without from yields a session (202)', async () => {
      const res = await c.startUpload(crossRepo, { query: { mount: dummyDigest } });
      expect(res.status).toBe(202);
      expect(location(res)).toMatch(new RegExp(`^/v2/${crossRepo}/blobs/uploads/`));
    });

    it("mounting another repository's blob yields 201 with the blob Location", async () => {
      mountResponse = await c.startUpload(crossRepo, {
        query: { mount: blobA.digest, from: repo },
      });
      expect(mountResponse.status).toBe(201);
      expect(location(mountResponse)).toBe(`/v2/${crossRepo}/blobs/${blobA.digest}`);
      expect(mountResponse.header('docker-content-digest')).toBe(blobA.digest);
    });

    it('GET of the mounted blob in the target repository yields 200', async () => {
      const get = await c.get(location(mountResponse));
      expect(get.status).toBe(200);
      expect(get.body.equals(blobA.bytes)).toBe(true);
    });

    it('mounting a blob the source does not have yields a session (202)', async () => {
      const missing = randomBlob(16);
      const res = await c.startUpload(crossRepo, { query: { mount: missing.digest, from: repo } });
      expect(res.status).toBe(202);
      expect(location(res)).toMatch(new RegExp(`^/v2/${crossRepo}/blobs/uploads/`));
      // ... and that session takes the upload.
      const put = await c.put(location(res), {
        query: { digest: missing.digest },
        headers: OCTET,
        body: missing.bytes,
      });
      expect(put.status).toBe(201);
    });

    it('mount from a repository that does not exist yields a session (202)', async () => {
      const res = await c.startUpload(crossRepo, {
        query: { mount: layer.digest, from: 'no/such-repo' },
      });
      expect(res.status).toBe(202);
    });

    it('mount without from, automatic cross-mount disabled (the default): 202', async () => {
      const res = await c.startUpload(`${crossRepo}-auto`, { query: { mount: blobA.digest } });
      expect(res.status).toBe(202);
      expectOciError(
        await c.get(`/v2/${crossRepo}-auto/blobs/${blobA.digest}`),
        404,
        'BLOB_UNKNOWN',
      );
    });

    it('mount without from, automatic cross-mount enabled: 201 and the blob is served', async () => {
      const auto = await startTestNode({
        location: node.storage,
        uploads: { automaticCrossMount: true },
      });
      try {
        const ac = new RegistryClient(auto.url);
        const res = await ac.startUpload(`${crossRepo}-auto`, { query: { mount: blobA.digest } });
        expect(res.status).toBe(201);
        expect(location(res)).toBe(`/v2/${crossRepo}-auto/blobs/${blobA.digest}`);
        expect((await ac.get(location(res))).body.equals(blobA.bytes)).toBe(true);
        // A digest no repository has still starts a session.
        const missing = await ac.startUpload(`${crossRepo}-auto`, {
          query: { mount: dummyDigest },
        });
        expect(missing.status).toBe(202);
      } finally {
        await auto.close();
      }
    });
  });

  describe('manifest upload', () => {
    it('GET of a nonexistent manifest yields 404', async () => {
      expectOciError(
        await c.get(`/v2/${repo}/manifests/.INVALID_MANIFEST_NAME`),
        404,
        'MANIFEST_UNKNOWN',
      );
    });

    it('PUT accepts a manifest under four tags, each with 201 and Location', async () => {
      for (let i = 0; i < 4; i++) {
        const res = await c.putManifest(repo, `test${i}`, manifest);
        expect(res.status).toBe(201);
        expect(location(res)).toBe(`/v2/${repo}/manifests/${manifest.digest}`);
        expect(res.header('docker-content-digest')).toBe(manifest.digest);
      }
    });

    it('a manifest with no layers is accepted', async () => {
      const res = await c.putManifest(repo, 'emptylayer', noLayers);
      expect(res.status).toBe(201);
      expect(location(res)).toBe(`/v2/${repo}/manifests/${noLayers.digest}`);
    });

    it('GET of the manifest by digest yields 200 with the exact bytes and headers', async () => {
      const res = await c.get(`/v2/${repo}/manifests/${manifest.digest}`, {
        headers: { Accept: MediaTypes.ociManifest },
      });
      expect(res.status).toBe(200);
      expect(res.body.equals(manifest.bytes)).toBe(true);
      expect(res.header('content-type')).toBe(MediaTypes.ociManifest);
      expect(res.header('content-length')).toBe(String(manifest.size));
      expect(res.header('docker-content-digest')).toBe(manifest.digest);
    });
  });

  describe('teardown', () => {
    it('deleting the manifests yields 202', async () => {
      expect((await c.delete(`/v2/${repo}/manifests/${manifest.digest}`)).status).toBe(202);
      expect((await c.delete(`/v2/${repo}/manifests/${noLayers.digest}`)).status).toBe(202);
    });

    it('deleting the config blob yields 202', async () => {
      expect((await c.delete(`/v2/${repo}/blobs/${config.digest}`)).status).toBe(202);
    });

    it('deleting the layer blob yields 202', async () => {
      expect((await c.delete(`/v2/${repo}/blobs/${layer.digest}`)).status).toBe(202);
    });
  });

  // ---- The newer suite's blob API matrix (conformance/run.go TestBlobAPIs), both digest algorithms.

  describe.each<DigestAlgorithm>(['sha256', 'sha512'])('blob APIs with %s digests', (alg) => {
    const r = `conformance/blobs-${alg}`;
    const chunkSize = 1024;
    const big = () => randomBlob(chunkSize * 3 - 5, MediaTypes.ociLayer, alg);

    async function expectServed(b: ImageBlob, loc?: string): Promise<void> {
      if (loc) expect((await c.get(loc)).body.equals(b.bytes)).toBe(true);
      const head = await c.head(`/v2/${r}/blobs/${b.digest}`);
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      expect(head.header('content-length')).toBe(String(b.size));
      expect(head.header('docker-content-digest')).toBe(b.digest);
      const get = await c.get(`/v2/${r}/blobs/${b.digest}`);
      expect(get.status).toBe(200);
      expect(get.body.equals(b.bytes)).toBe(true);
      expect(get.header('docker-content-digest')).toBe(b.digest);
    }

    /** Chunked upload in `chunkSize` pieces; `putLast` sends the last chunk in the closing PUT. */
    async function chunked(
      b: ImageBlob,
      opts: { putLast?: boolean; digest?: string } = {},
    ): Promise<HttpResponse> {
      let loc = location(await c.startUpload(r, { headers: { 'Content-Length': 0 } }));
      for (let start = 0; start < b.size; start += chunkSize) {
        const end = Math.min(start + chunkSize, b.size) - 1;
        const headers = { ...OCTET, 'Content-Range': `${start}-${end}` };
        const body = b.bytes.subarray(start, end + 1);
        if (opts.putLast && end === b.size - 1) {
          return c.put(loc, { query: { digest: opts.digest ?? b.digest }, headers, body });
        }
        const res = await c.patch(loc, { headers, body });
        expect(res.status).toBe(202);
        expect(res.header('range')).toBe(`0-${end}`);
        loc = location(res);
      }
      return c.put(loc, { query: { digest: opts.digest ?? b.digest }, headers: OCTET });
    }

    it('POST only (single request) yields 201 and the blob is served', async () => {
      const b = randomBlob(512, MediaTypes.ociLayer, alg);
      const res = await c.startUpload(r, {
        query: { digest: b.digest },
        headers: OCTET,
        body: b.bytes,
      });
      expect(res.status).toBe(201);
      expect(res.header('docker-content-digest')).toBe(b.digest);
      await expectServed(b, location(res));
    });

    it('POST then PUT yields 201', async () => {
      const b = randomBlob(512, MediaTypes.ociLayer, alg);
      const res = await c.uploadBlob(r, b);
      expect(res.status).toBe(201);
      await expectServed(b, location(res));
    });

    it('streamed PATCH then PUT yields 201', async () => {
      const b = big();
      const post = await c.startUpload(r, { headers: { 'Content-Length': 0 } });
      const patch = await c.patch(location(post), { headers: OCTET, body: b.bytes });
      expect(patch.status).toBe(202);
      const put = await c.put(location(patch), { query: { digest: b.digest }, headers: OCTET });
      expect(put.status).toBe(201);
      await expectServed(b, location(put));
    });

    it('chunked in three PATCHes then an empty PUT yields 201', async () => {
      const b = big();
      const res = await chunked(b);
      expect(res.status).toBe(201);
      await expectServed(b, location(res));
    });

    it('chunked with the last chunk carried by the closing PUT yields 201', async () => {
      const b = big();
      const res = await chunked(b, { putLast: true });
      expect(res.status).toBe(201);
      await expectServed(b, location(res));
    });

    it('out-of-order chunks (PATCH and closing PUT) yield 416; a status GET recovers the upload', async () => {
      const b = big();
      let loc = location(await c.startUpload(r, { headers: { 'Content-Length': 0 } }));
      // Skip ahead before anything was sent.
      const ahead = await c.patch(loc, {
        headers: { ...OCTET, 'Content-Range': `${chunkSize}-${2 * chunkSize - 1}` },
        body: b.bytes.subarray(chunkSize, 2 * chunkSize),
      });
      expectOciError(ahead, 416, 'BLOB_UPLOAD_INVALID');
      const status0 = await c.get(loc);
      expect(status0.status).toBe(204);
      expect(status0.header('range')).toMatch(/^0-\d+$/);
      // First chunk in order.
      let res = await c.patch(loc, {
        headers: { ...OCTET, 'Content-Range': `0-${chunkSize - 1}` },
        body: b.bytes.subarray(0, chunkSize),
      });
      expect(res.status).toBe(202);
      loc = location(res);
      // The last chunk sent early in the closing PUT is refused, and the session survives.
      const early = await c.put(loc, {
        query: { digest: b.digest },
        headers: { ...OCTET, 'Content-Range': `${2 * chunkSize}-${b.size - 1}` },
        body: b.bytes.subarray(2 * chunkSize),
      });
      expectOciError(early, 416, 'BLOB_UPLOAD_INVALID');
      const status1 = await c.get(loc);
      expect(status1.status).toBe(204);
      expect(status1.header('range')).toBe(`0-${chunkSize - 1}`);
      loc = location(status1);
      res = await c.patch(loc, {
        headers: { ...OCTET, 'Content-Range': `${chunkSize}-${2 * chunkSize - 1}` },
        body: b.bytes.subarray(chunkSize, 2 * chunkSize),
      });
      expect(res.status).toBe(202);
      const put = await c.put(location(res), {
        query: { digest: b.digest },
        headers: { ...OCTET, 'Content-Range': `${2 * chunkSize}-${b.size - 1}` },
        body: b.bytes.subarray(2 * chunkSize),
      });
      expect(put.status).toBe(201);
      await expectServed(b, location(put));
    });

    it('a mount from another repository yields 201; a mount of a blob it lacks yields 202', async () => {
      const b = randomBlob(512, MediaTypes.ociLayer, alg);
      expect((await c.uploadBlob(`${r}-src`, b)).status).toBe(201);
      const res = await c.startUpload(r, { query: { mount: b.digest, from: `${r}-src` } });
      expect(res.status).toBe(201);
      await expectServed(b, location(res));
      const missing = randomBlob(512, MediaTypes.ociLayer, alg);
      const miss = await c.startUpload(r, { query: { mount: missing.digest, from: `${r}-src` } });
      expect(miss.status).toBe(202);
      expectOciError(await c.head(`/v2/${r}/blobs/${missing.digest}`), 404, 'BLOB_UNKNOWN');
    });

    it('a cancelled upload yields 204 and is then unknown', async () => {
      const post = await c.startUpload(r);
      const patch = await c.patch(location(post), { headers: OCTET, body: randomBytes(10) });
      expect(patch.status).toBe(202);
      const del = await c.delete(location(post), { headers: { 'Content-Length': 0 } });
      expect(del.status).toBe(204);
      expectOciError(await c.get(location(post)), 404, 'BLOB_UPLOAD_UNKNOWN');
      expectOciError(
        await c.put(location(post), { query: { digest: blobA.digest } }),
        404,
        'BLOB_UPLOAD_UNKNOWN',
      );
    });

    it('the empty blob and the empty JSON blob upload, HEAD, GET and delete', async () => {
      for (const b of [
        blobOf('', MediaTypes.ociLayer, alg),
        blobOf('{}', MediaTypes.ociEmpty, alg),
      ]) {
        const res = await c.startUpload(r, {
          query: { digest: b.digest },
          headers: OCTET,
          body: b.bytes,
        });
        expect(res.status).toBe(201);
        await expectServed(b, location(res));
        expect((await c.delete(`/v2/${r}/blobs/${b.digest}`)).status).toBe(202);
        expectOciError(await c.head(`/v2/${r}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
      }
      // An empty blob through an upload session too.
      const empty = blobOf('', MediaTypes.ociLayer, alg);
      const put = await c.uploadBlob(r, empty);
      expect(put.status).toBe(201);
      await expectServed(empty);
    });

    describe('a digest that does not match the content yields 400 DIGEST_INVALID and stores nothing', () => {
      const corrupt = (): { b: ImageBlob; wrong: string } => {
        const b = big();
        return {
          b,
          wrong: blobOf(Buffer.concat([b.bytes, Buffer.from('oh no')]), b.mediaType, alg).digest,
        };
      };
      async function expectRefused(res: HttpResponse, wrong: string): Promise<void> {
        expectOciError(res, 400, 'DIGEST_INVALID');
        expectOciError(await c.head(`/v2/${r}/blobs/${wrong}`), 404, 'BLOB_UNKNOWN');
      }

      it('POST only', async () => {
        const { b, wrong } = corrupt();
        await expectRefused(
          await c.startUpload(r, { query: { digest: wrong }, headers: OCTET, body: b.bytes }),
          wrong,
        );
      });
      it('POST then PUT', async () => {
        const { b, wrong } = corrupt();
        await expectRefused(await c.uploadBlob(r, { bytes: b.bytes, digest: wrong }), wrong);
      });
      it('chunked', async () => {
        const { b, wrong } = corrupt();
        await expectRefused(await chunked(b, { digest: wrong }), wrong);
      });
      it('chunked with the last chunk in the PUT', async () => {
        const { b, wrong } = corrupt();
        await expectRefused(await chunked(b, { digest: wrong, putLast: true }), wrong);
      });
      it('streamed', async () => {
        const { b, wrong } = corrupt();
        const post = await c.startUpload(r);
        const patch = await c.patch(location(post), { headers: OCTET, body: b.bytes });
        await expectRefused(
          await c.put(location(patch), { query: { digest: wrong }, headers: OCTET }),
          wrong,
        );
      });
    });
  });

  // ---- Manifest kinds the newer suite pushes: Docker schema 2, indexes (nested, empty), sha512,
  // artifacts, unknown fields, non-distributable layers, a manifest close to the 4 MiB limit.

  describe('manifest kinds', () => {
    const r = 'conformance/manifests';

    async function pushAndVerify(ref: string, m: Manifest): Promise<void> {
      const put = await c.putManifest(r, ref, m);
      expect(put.status).toBe(201);
      expect(put.header('docker-content-digest')).toBe(m.digest);
      for (const path of [location(put), `/v2/${r}/manifests/${ref}`]) {
        const get = await c.get(path, {
          headers: { Accept: `${MediaTypes.ociIndex}, ${m.mediaType}` },
        });
        expect(get.status).toBe(200);
        expect(get.body.equals(m.bytes)).toBe(true);
        expect(get.header('content-type')).toBe(m.mediaType);
        expect(get.header('docker-content-digest')).toBe(m.digest);
        const head = await c.head(path, { headers: { Accept: m.mediaType } });
        expect(head.status).toBe(200);
        expect(head.body.length).toBe(0);
        expect(head.header('content-length')).toBe(String(m.size));
        expect(head.header('content-type')).toBe(m.mediaType);
      }
    }

    it('a Docker schema 2 image and manifest list', async () => {
      const img = image({ docker: true });
      await c.pushImage(r, 'docker', img.blobs, img.manifest);
      await pushAndVerify('docker', img.manifest);
      const list = imageIndex({ manifests: [img.manifest], docker: true });
      await pushAndVerify('docker-list', list);
    });

    it('a multi-platform index, a nested index and an empty index', async () => {
      const a = image();
      const b = image();
      for (const img of [a, b]) await c.pushImage(r, img.manifest.digest, img.blobs, img.manifest);
      const index = imageIndex({ manifests: [a.manifest, b.manifest] });
      await pushAndVerify('index', index);
      const nested = imageIndex({ manifests: [index, a.manifest] });
      await pushAndVerify('index-of-index', nested);
      await pushAndVerify('empty-index', imageIndex({ manifests: [] }));
    });

    it('sha512 content pushed by digest', async () => {
      const img = image({ alg: 'sha512' });
      for (const b of img.blobs) expect((await c.uploadBlob(r, b)).status).toBe(201);
      await pushAndVerify(img.manifest.digest, img.manifest);
      const index = imageIndex({ manifests: [img.manifest], alg: 'sha512' });
      await pushAndVerify(index.digest, index);
    });

    it('an artifact with an empty config, and one without layers', async () => {
      const payload = randomBlob(20, 'application/vnd.example.conf1');
      const art = imageManifest({
        artifactType: 'application/vnd.example.conf1',
        config: emptyJson,
        layers: [payload],
      });
      await c.pushImage(r, 'artifact', [emptyJson, payload], art);
      await pushAndVerify('artifact', art);
      const bare = imageManifest({
        artifactType: 'application/vnd.example.conf1',
        config: emptyJson,
        layers: [emptyJson],
      });
      await pushAndVerify('artifact-without-layers', bare);
    });

    it('unknown fields and descriptor data fields are kept byte for byte', async () => {
      const img = image();
      for (const b of img.blobs) await c.uploadBlob(r, b);
      const custom = imageManifest({
        config: {
          ...img.config,
          data: img.config.bytes.toString('base64'),
          newUnspecifiedField: 'aGVsbG8=',
        } as never,
        layers: img.layers,
        extra: { 'org.example.custom': { nested: [1, 2, 3] } },
        indent: '\t',
      });
      await pushAndVerify('custom-fields', custom);
    });

    it('non-distributable layers with URLs need not be pushed', async () => {
      const img = image();
      for (const b of img.blobs) await c.uploadBlob(r, b);
      const foreign = randomBlob(256);
      const m = imageManifest({
        config: img.config,
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
            digest: foreign.digest,
            size: 123456,
            urls: [`https://store.example.com/blobs/sha256/${foreign.digest.slice(7)}`],
          },
          ...img.layers,
        ],
      });
      await pushAndVerify('non-distributable', m);
    });

    it('a manifest of almost 4 MiB is accepted', async () => {
      const img = image();
      for (const b of img.blobs) await c.uploadBlob(r, b);
      const annotations: Record<string, string> = {};
      for (let i = 0; i < 390; i++) annotations[`large-annotation-${i}`] = 'A'.repeat(10_000);
      const m = imageManifest({ config: img.config, layers: img.layers, annotations });
      expect(m.size).toBeGreaterThan(3_900_000);
      await pushAndVerify('large-manifest', m);
    });

    it('pushing the same manifest again, or under a moved tag, is idempotent', async () => {
      const a = image();
      const b = image();
      await c.pushImage(r, 'moving', a.blobs, a.manifest);
      await c.pushImage(r, 'moving', b.blobs, b.manifest);
      expect((await c.putManifest(r, 'moving', b.manifest)).status).toBe(201);
      const get = await c.get(`/v2/${r}/manifests/moving`);
      expect(get.header('docker-content-digest')).toBe(b.manifest.digest);
      expect((await c.get(`/v2/${r}/manifests/${a.manifest.digest}`)).status).toBe(200);
    });

    it('a Docker manifest under a tag keeps serving Docker clients', async () => {
      const config = configBlob({ docker: true });
      const l = randomBlob(30, MediaTypes.dockerLayer);
      const m = dockerManifest({ config, layers: [l] });
      await c.pushImage(r, 'docker-only', [config, l], m);
      const get = await c.get(`/v2/${r}/manifests/docker-only`, {
        headers: { Accept: MediaTypes.dockerManifest },
      });
      expect(get.status).toBe(200);
      expect(get.header('content-type')).toBe(MediaTypes.dockerManifest);
    });
  });
});
