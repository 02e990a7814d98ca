/**
 * The conformance suite's "Pull" workflow (distribution-spec conformance/01_pull_test.go): setup
 * pushes two configs, a layer, one manifest by tag and one by digest; then HEAD/GET of blobs and
 * manifests (present and absent), the error-body check, and teardown. Then the newer suite's range
 * requests on a 2048-byte blob, and content negotiation on manifest GETs.
 */
import { startTestNode, type StorageKind, type TestNode } from '../helpers/node';
import { RegistryClient, SPEC_ERROR_CODES, expectOciError, ociErrors } from '../helpers/http';
import {
  blobOf,
  configBlob,
  image,
  imageIndex,
  imageManifest,
  MediaTypes,
  randomBlob,
} from '../helpers/images';

describe.each<StorageKind>(['fs', 's3'])('pull workflow (%s storage)', (storage) => {
  let node: TestNode;
  let c: RegistryClient;
  const repo = 'conformance/pull';
  const tag = 'tagtest0';
  const configs = [configBlob(), configBlob()];
  const layer = randomBlob(120, MediaTypes.ociLayerGzip);
  const manifests = configs.map((config) =>
    imageManifest({ config, layers: [layer], indent: '\t' }),
  );
  const [m0, m1] = manifests as [(typeof manifests)[0], (typeof manifests)[0]];
  const dummyDigest = blobOf('hello world').digest;
  const accept = { Accept: MediaTypes.ociManifest };

  beforeAll(async () => {
    node = await startTestNode({ storage });
    c = new RegistryClient(node.url);
  });
  afterAll(async () => {
    await node?.close();
  });

  describe('setup', () => {
    it.each([0, 1])('populates the registry with config blob %i', async (i) => {
      const res = await c.uploadBlob(repo, configs[i]!);
      expect(res.status).toBe(201);
    });
    it('populates the registry with the layer', async () => {
      expect((await c.uploadBlob(repo, layer)).status).toBe(201);
    });
    it('populates the registry with manifest 0 under a tag', async () => {
      expect((await c.putManifest(repo, tag, m0)).status).toBe(201);
    });
    it('populates the registry with manifest 1 by digest', async () => {
      const res = await c.putManifest(repo, m1.digest, m1);
      expect(res.status).toBe(201);
      expect(res.header('location')).toBe(`/v2/${repo}/manifests/${m1.digest}`);
    });
  });

  describe('pull blobs', () => {
    it('HEAD of a nonexistent blob yields 404', async () => {
      expectOciError(await c.head(`/v2/${repo}/blobs/${dummyDigest}`), 404, 'BLOB_UNKNOWN');
    });
    it('HEAD of an existing blob yields 200 with its digest and length, no body', async () => {
      const res = await c.head(`/v2/${repo}/blobs/${configs[0]!.digest}`);
      expect(res.status).toBe(200);
      expect(res.header('docker-content-digest')).toBe(configs[0]!.digest);
      expect(res.header('content-length')).toBe(String(configs[0]!.size));
      expect(res.body.length).toBe(0);
    });
    it('GET of a nonexistent blob yields 404', async () => {
      expectOciError(await c.get(`/v2/${repo}/blobs/${dummyDigest}`), 404, 'BLOB_UNKNOWN');
    });
    it('GET of an existing blob yields 200 and its bytes', async () => {
      const res = await c.get(`/v2/${repo}/blobs/${configs[0]!.digest}`);
      expect(res.status).toBe(200);
      expect(res.body.equals(configs[0]!.bytes)).toBe(true);
      expect(res.header('docker-content-digest')).toBe(configs[0]!.digest);
    });
    it('a blob of another repository is not served here', async () => {
      expectOciError(
        await c.get(`/v2/other/repo/blobs/${configs[0]!.digest}`),
        404,
        'BLOB_UNKNOWN',
      );
    });
  });

  describe('pull manifests', () => {
    it('HEAD of a nonexistent manifest yields 404', async () => {
      expectOciError(
        await c.head(`/v2/${repo}/manifests/.INVALID_MANIFEST_NAME`),
        404,
        'MANIFEST_UNKNOWN',
      );
    });
    it.each([0, 1])('HEAD of manifest %i by digest yields 200 with its digest', async (i) => {
      const m = manifests[i]!;
      const res = await c.head(`/v2/${repo}/manifests/${m.digest}`, { headers: accept });
      expect(res.status).toBe(200);
      expect(res.header('docker-content-digest')).toBe(m.digest);
      expect(res.header('content-length')).toBe(String(m.size));
      expect(res.header('content-type')).toBe(MediaTypes.ociManifest);
      expect(res.body.length).toBe(0);
    });
    it('HEAD of the manifest by tag yields 200 with the digest of manifest 0', async () => {
      const res = await c.head(`/v2/${repo}/manifests/${tag}`, { headers: accept });
      expect(res.status).toBe(200);
      expect(res.header('docker-content-digest')).toBe(m0.digest);
    });
    it('GET of a nonexistent manifest yields 404', async () => {
      expectOciError(
        await c.get(`/v2/${repo}/manifests/.INVALID_MANIFEST_NAME`),
        404,
        'MANIFEST_UNKNOWN',
      );
      expectOciError(await c.get(`/v2/${repo}/manifests/${dummyDigest}`), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await c.get(`/v2/no/such/repo/manifests/latest`), 404, 'MANIFEST_UNKNOWN');
    });
    it.each([0, 1])('GET of manifest %i by digest yields 200 and the exact bytes', async (i) => {
      const m = manifests[i]!;
      const res = await c.get(`/v2/${repo}/manifests/${m.digest}`, { headers: accept });
      expect(res.status).toBe(200);
      expect(res.body.equals(m.bytes)).toBe(true);
      expect(res.header('content-type')).toBe(MediaTypes.ociManifest);
      expect(res.header('docker-content-digest')).toBe(m.digest);
    });
    it('GET of the manifest by tag yields 200 and manifest 0', async () => {
      const res = await c.get(`/v2/${repo}/manifests/${tag}`, { headers: accept });
      expect(res.status).toBe(200);
      expect(res.body.equals(m0.bytes)).toBe(true);
      expect(res.header('docker-content-digest')).toBe(m0.digest);
    });
  });

  describe('error codes', () => {
    it('a 400 carries the spec JSON body with a known code (GET with a malformed digest and a body)', async () => {
      const res = await c.get(`/v2/${repo}/manifests/sha256:totallywrong`, {
        headers: { 'Content-Type': MediaTypes.ociManifest },
        body: 'blablabla',
      });
      expect([400, 404]).toContain(res.status);
      expect(res.status).toBe(400);
      const errors = ociErrors(res);
      expect(SPEC_ERROR_CODES).toContain(errors[0]!.code);
      expect(errors[0]!.code).toBe('DIGEST_INVALID');
    });
  });

  describe('teardown', () => {
    it.each([0, 1])('deleting manifest %i yields 202', async (i) => {
      expect((await c.delete(`/v2/${repo}/manifests/${manifests[i]!.digest}`)).status).toBe(202);
    });
    it.each([0, 1])('deleting config blob %i yields 202', async (i) => {
      expect((await c.delete(`/v2/${repo}/blobs/${configs[i]!.digest}`)).status).toBe(202);
    });
    it('deleting the layer blob yields 202', async () => {
      expect((await c.delete(`/v2/${repo}/blobs/${layer.digest}`)).status).toBe(202);
    });
    it('nothing deleted is served any more', async () => {
      expectOciError(await c.get(`/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await c.head(`/v2/${repo}/manifests/${m1.digest}`), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await c.head(`/v2/${repo}/blobs/${layer.digest}`), 404, 'BLOB_UNKNOWN');
    });
  });

  // The newer suite's "range requests" on a 2048-byte blob.
  describe('range requests', () => {
    const blob = randomBlob(2048);
    const get = (range: string) =>
      c.get(`/v2/${repo}/blobs/${blob.digest}`, { headers: { Range: range } });
    beforeAll(async () => {
      expect((await c.uploadBlob(repo, blob)).status).toBe(201);
    });

    it.each([
      ['bytes=500-1499', 500, 1499],
      ['bytes=500-', 500, 2047],
      ['bytes=-500', 1548, 2047],
      ['bytes=2000-5000', 2000, 2047],
      ['bytes=0-0', 0, 0],
    ])('%s yields 206 with the bytes and Content-Range', async (range, start, end) => {
      const res = await get(range);
      expect(res.status).toBe(206);
      expect(res.body.equals(blob.bytes.subarray(start, end + 1))).toBe(true);
      expect(res.header('content-length')).toBe(String(end - start + 1));
      expect(res.header('content-range')).toBe(`bytes ${start}-${end}/2048`);
      expect(res.header('docker-content-digest')).toBe(blob.digest);
    });

    it.each(['bytes=500-0', 'bytes=5000-10000', 'bytes=2048-', 'bytes=-0', 'bytes=abc', 'bytes=-'])(
      '%s yields 416 with Content-Range bytes */2048',
      async (range) => {
        const res = await get(range);
        expectOciError(res, 416, 'SIZE_INVALID');
        expect(res.header('content-range')).toBe('bytes */2048');
      },
    );

    it('several ranges, or another unit, are answered with the whole blob', async () => {
      for (const range of ['bytes=0-1,5-6', 'items=0-5']) {
        const res = await get(range);
        expect(res.status).toBe(200);
        expect(res.body.equals(blob.bytes)).toBe(true);
      }
    });

    it('HEAD advertises range support', async () => {
      const res = await c.head(`/v2/${repo}/blobs/${blob.digest}`);
      expect(res.header('accept-ranges')).toBe('bytes');
    });
  });

  describe('content negotiation', () => {
    const img = image();
    const index = imageIndex({ manifests: [img.manifest] });
    beforeAll(async () => {
      await c.pushImage(repo, 'image', img.blobs, img.manifest);
      expect((await c.putManifest(repo, 'index', index)).status).toBe(201);
    });

    it('an Accept listing the stored type, or a wildcard, or none, gets the manifest', async () => {
      for (const a of [`${MediaTypes.ociIndex}, ${MediaTypes.ociManifest}`, '*/*', undefined]) {
        const res = await c.get(`/v2/${repo}/manifests/index`, { headers: a ? { Accept: a } : {} });
        expect(res.status).toBe(200);
        expect(res.header('content-type')).toBe(MediaTypes.ociIndex);
      }
    });

    it('repeated Accept headers are combined', async () => {
      const res = await c.get(`/v2/${repo}/manifests/index`, {
        headers: { Accept: [MediaTypes.ociManifest, MediaTypes.ociIndex] },
      });
      expect(res.status).toBe(200);
    });

    it('an Accept that excludes the stored type gets 404 MANIFEST_UNKNOWN', async () => {
      const res = await c.get(`/v2/${repo}/manifests/index`, {
        headers: { Accept: MediaTypes.dockerManifest },
      });
      expectOciError(res, 404, 'MANIFEST_UNKNOWN');
    });
  });
});
