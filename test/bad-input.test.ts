/**
 * What a client sees when it sends something wrong: malformed or oversized manifests, wrong or
 * malformed digests, unknown media types, schema 1, missing blobs and children, invalid names,
 * bad ranges, unknown uploads, a client that disconnects mid-upload, upload sessions across a
 * node restart and their expiry. Every error is the spec's JSON body with one of its codes.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { parseDigest } from '@meridian/oci';
import { Layout, exists, listAllKeys } from '@meridian/storage';
import { startTestNode, type StorageKind, type TestNode } from './helpers/node';
import { RegistryClient, expectOciError, location, ociErrors } from './helpers/http';
import {
  blobOf,
  configBlob,
  descriptor,
  image,
  imageIndex,
  imageManifest,
  MediaTypes,
  randomBlob,
  type ImageBlob,
} from './helpers/images';

const OCTET = { 'Content-Type': 'application/octet-stream' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `sent` bytes of a body announced as `declared` bytes, then destroys the socket; resolves
 * once the server side has had time to see the abort.
 */
async function abortMidBody(
  url: string,
  method: string,
  path: string,
  declared: number,
  sent: Buffer,
): Promise<void> {
  const u = new URL(url);
  await new Promise<void>((resolve) => {
    const req = httpRequest({
      host: u.hostname,
      port: u.port,
      method,
      path,
      agent: false,
      headers: { ...OCTET, 'Content-Length': declared },
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write(sent, () => setTimeout(() => req.destroy(), 100));
  });
  await sleep(300);
}

describe.each<StorageKind>(['fs', 's3'])('bad input (%s storage)', (storage) => {
  let node: TestNode;
  let c: RegistryClient;
  const repo = 'bad/input';
  const img = image();

  beforeAll(async () => {
    node = await startTestNode({ storage });
    c = new RegistryClient(node.url);
    for (const b of img.blobs) expect((await c.uploadBlob(repo, b)).status).toBe(201);
  });
  afterAll(async () => {
    await node?.close();
  });

  describe('manifests', () => {
    const put = (
      ref: string,
      body: Buffer | string,
      contentType = MediaTypes.ociManifest as string,
    ) => c.put(`/v2/${repo}/manifests/${ref}`, { headers: { 'Content-Type': contentType }, body });

    it('malformed JSON, a non-object, a wrong schemaVersion or a bad descriptor: 400 MANIFEST_INVALID', async () => {
      const bad = [
        '{not json',
        '[1,2,3]',
        JSON.stringify({ ...img.manifest.json, schemaVersion: 3 }),
        JSON.stringify({
          ...img.manifest.json,
          config: { ...descriptor(img.config), digest: 'sha256:zz' },
        }),
        JSON.stringify({
          ...img.manifest.json,
          layers: [{ ...descriptor(img.layers[0]!), size: -1 }],
        }),
        JSON.stringify({ ...img.manifest.json, layers: 'nope' }),
        JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest }),
      ];
      for (const body of bad) expectOciError(await put('bad', body), 400, 'MANIFEST_INVALID');
      expectOciError(await c.get(`/v2/${repo}/manifests/bad`), 404, 'MANIFEST_UNKNOWN');
    });

    it('a manifest over 4 MiB: 413 with the spec error body', async () => {
      const annotations = { big: 'x'.repeat(4 * 1024 * 1024) };
      const m = imageManifest({ config: img.config, layers: img.layers, annotations });
      const res = await put('huge', m.bytes);
      expect(res.status).toBe(413);
      expect(SPEC(ociErrors(res)[0]!.code)).toBe(true);
      expectOciError(await c.get(`/v2/${repo}/manifests/huge`), 404, 'MANIFEST_UNKNOWN');
      // The node keeps serving.
      expect((await c.get('/v2/')).status).toBe(200);
    });

    it('an unknown media type, or a body that contradicts its Content-Type: 400 MANIFEST_INVALID', async () => {
      expectOciError(
        await put('unknown', img.manifest.bytes, 'application/vnd.example.unknown+json'),
        400,
        'MANIFEST_INVALID',
      );
      const foreign = JSON.stringify({
        ...img.manifest.json,
        mediaType: 'application/vnd.example.thing',
      });
      expectOciError(await put('unknown', foreign, 'application/json'), 400, 'MANIFEST_INVALID');
      expectOciError(
        await put('unknown', img.manifest.bytes, MediaTypes.dockerManifest),
        400,
        'MANIFEST_INVALID',
      );
    });

    it('a referrer whose annotations or artifactType are not what the spec types them is refused, and the subject’s referrers stay decodable', async () => {
      expect((await put('subject', img.manifest.bytes)).status).toBe(201);
      const referrer = (extra: Record<string, unknown>) =>
        imageManifest({ config: img.config, subject: img.manifest, extra });
      const bad = [
        referrer({ annotations: { 'org.example.nested': { deep: [1, 2] } } }),
        referrer({ annotations: ['x'] }),
        referrer({ artifactType: 42 }),
        referrer({ artifactType: 'application/x.sbom', annotations: { n: 7 } }),
      ];
      for (const m of bad) {
        const res = await put(m.digest, m.bytes);
        expectOciError(res, 400, 'MANIFEST_INVALID');
        expect(res.headers['oci-subject']).toBeUndefined();
        expectOciError(await c.get(`/v2/${repo}/manifests/${m.digest}`), 404, 'MANIFEST_UNKNOWN');
      }
      const listed = await c.get(`/v2/${repo}/referrers/${img.manifest.digest}`);
      expect(listed.status).toBe(200);
      expect(listed.json()).toMatchObject({ manifests: [] });
    });

    it('a Docker schema 1 manifest is refused with a message that says so', async () => {
      const schema1 = JSON.stringify({
        schemaVersion: 1,
        name: repo,
        tag: 'old',
        fsLayers: [],
        history: [],
        signatures: [],
      });
      for (const ct of [
        MediaTypes.dockerSchema1Signed,
        'application/vnd.docker.distribution.manifest.v1+json',
        'application/json',
      ]) {
        const res = await put('old', schema1, ct);
        expectOciError(res, 400, 'MANIFEST_INVALID');
        expect(ociErrors(res)[0]!.message).toMatch(/schema 1/i);
      }
    });

    it('missing config, layer or child manifest: 404 MANIFEST_BLOB_UNKNOWN naming them', async () => {
      const absent = randomBlob(10);
      const noLayer = imageManifest({ config: img.config, layers: [absent] });
      const res = await c.putManifest(repo, 'missing-layer', noLayer);
      expectOciError(res, 404, 'MANIFEST_BLOB_UNKNOWN');
      expect(JSON.stringify(ociErrors(res)[0]!.detail)).toContain(absent.digest);
      const noConfig = imageManifest({ config: configBlob(), layers: img.layers });
      expectOciError(
        await c.putManifest(repo, 'missing-config', noConfig),
        404,
        'MANIFEST_BLOB_UNKNOWN',
      );
      const other = image();
      const index = imageIndex({ manifests: [img.manifest, other.manifest] });
      expect((await c.putManifest(repo, img.manifest.digest, img.manifest)).status).toBe(201);
      expectOciError(
        await c.putManifest(repo, 'missing-child', index),
        404,
        'MANIFEST_BLOB_UNKNOWN',
      );
      // A blob of another repository does not count.
      expect((await c.uploadBlob('bad/elsewhere', absent)).status).toBe(201);
      expectOciError(
        await c.putManifest(repo, 'missing-layer', noLayer),
        404,
        'MANIFEST_BLOB_UNKNOWN',
      );
      for (const t of ['missing-layer', 'missing-config', 'missing-child']) {
        expectOciError(await c.head(`/v2/${repo}/manifests/${t}`), 404, 'MANIFEST_UNKNOWN');
      }
    });

    it('a digest reference that does not match the body, or is malformed: 400 DIGEST_INVALID', async () => {
      const other = imageManifest({
        config: img.config,
        layers: img.layers,
        annotations: { a: 'b' },
      });
      expectOciError(await c.putManifest(repo, other.digest, img.manifest), 400, 'DIGEST_INVALID');
      const spaced = {
        ...img.manifest,
        bytes: Buffer.concat([img.manifest.bytes, Buffer.from('  ')]),
      };
      expectOciError(await c.putManifest(repo, img.manifest.digest, spaced), 400, 'DIGEST_INVALID');
      expectOciError(
        await c.putManifest(repo, 'sha256:baddigeststring', img.manifest),
        400,
        'DIGEST_INVALID',
      );
      const get = await c.get(`/v2/${repo}/manifests/sha256:baddigeststring`);
      expect([400, 404]).toContain(get.status);
      expectOciError(get, get.status, get.status === 400 ? 'DIGEST_INVALID' : 'MANIFEST_UNKNOWN');
    });

    it('an invalid tag: 400 with the spec error body', async () => {
      for (const t of ['.hidden', 'a'.repeat(129), '-dash']) {
        const res = await c.putManifest(repo, t, img.manifest);
        expect(res.status).toBe(400);
        expect(SPEC(ociErrors(res)[0]!.code)).toBe(true);
      }
    });
  });

  describe('digests', () => {
    it('malformed digests on blob GET, HEAD and DELETE: 400 DIGEST_INVALID', async () => {
      const hex = 'a'.repeat(64);
      for (const d of [
        'sha256:xyz',
        `md5:${'a'.repeat(32)}`,
        `sha256:${hex.toUpperCase()}`,
        `sha256:${hex}0`,
        'sha512:abc',
      ]) {
        expectOciError(await c.get(`/v2/${repo}/blobs/${d}`), 400, 'DIGEST_INVALID');
        expectOciError(await c.delete(`/v2/${repo}/blobs/${d}`), 400, 'DIGEST_INVALID');
        expectOciError(await c.head(`/v2/${repo}/blobs/${d}`), 400, 'DIGEST_INVALID');
      }
    });

    it('an upload closed without a digest or with a malformed one: 400 DIGEST_INVALID, session kept', async () => {
      const b = randomBlob(20);
      const loc = location(await c.startUpload(repo));
      expectOciError(await c.put(loc, { headers: OCTET, body: b.bytes }), 400, 'DIGEST_INVALID');
      expectOciError(
        await c.put(loc, { query: { digest: 'sha256:nope' }, headers: OCTET }),
        400,
        'DIGEST_INVALID',
      );
      const ok = await c.put(loc, { query: { digest: b.digest }, headers: OCTET, body: b.bytes });
      expect(ok.status).toBe(201);
    });

    it('a malformed digest in a single-POST upload or a mount: 400 DIGEST_INVALID', async () => {
      expectOciError(
        await c.startUpload(repo, { query: { digest: 'sha256:1' }, body: 'x' }),
        400,
        'DIGEST_INVALID',
      );
      expectOciError(
        await c.startUpload(repo, { query: { mount: 'nope', from: 'a/b' } }),
        400,
        'DIGEST_INVALID',
      );
    });

    it('a wrong length on a single-POST upload: 400 SIZE_INVALID and nothing stored', async () => {
      const b = randomBlob(30);
      const res = await c.startUpload(repo, {
        query: { digest: b.digest },
        headers: { ...OCTET, 'Content-Length': 30 },
        body: b.bytes,
      });
      expect(res.status).toBe(201);
      const other = randomBlob(30);
      const chunk = await c.startUpload(repo);
      const patch = await c.patch(location(chunk), {
        headers: { ...OCTET, 'Content-Range': '0-39' },
        body: other.bytes,
      });
      expectOciError(patch, 400, 'SIZE_INVALID');
      const status = await c.get(location(chunk));
      expect(status.header('range')).toBe('0-0');
    });
  });

  describe('names', () => {
    it('the parent of a pushed repository is no repository: 404 NAME_UNKNOWN, as the catalog says', async () => {
      expect((await c.putManifest(repo, 'nested', img.manifest)).status).toBe(201);
      const parent = repo.split('/')[0]!;
      expect((await c.get('/v2/_catalog')).json()).not.toMatchObject({
        repositories: expect.arrayContaining([parent]) as unknown,
      });
      expectOciError(await c.get(`/v2/${parent}/tags/list`), 404, 'NAME_UNKNOWN');
      expectOciError(await c.get(`/acr/v1/${parent}/_tags`), 404, 'NAME_UNKNOWN');
      expectOciError(await c.get(`/acr/v1/${parent}/_manifests`), 404, 'NAME_UNKNOWN');
      expect((await c.get(`/v2/${repo}/tags/list`)).status).toBe(200);
    });

    it.each([
      ['upper case', 'Bad/Input'],
      ['a .. component', 'a/../b'],
      ['an empty component', 'a//b'],
      ['a leading separator', '_a/b'],
      ['over 255 characters', 'a'.repeat(256)],
      ['percent-encoded ..', 'a/%2e%2e/b'],
    ])('%s: 400 NAME_INVALID', async (_what, name) => {
      expectOciError(await c.get(`/v2/${name}/tags/list`), 400, 'NAME_INVALID');
      expectOciError(await c.startUpload(name), 400, 'NAME_INVALID');
      expectOciError(await c.putManifest(name, 'latest', img.manifest), 400, 'NAME_INVALID');
    });

    it('255 characters and several components are fine', async () => {
      const name = ['a'.repeat(100), 'b'.repeat(100), 'c'.repeat(53)].join('/');
      expect(name).toHaveLength(255);
      expect((await c.uploadBlob(name, img.config)).status).toBe(201);
    });

    it('an unknown endpoint is 404 and a method the resource lacks is 405 UNSUPPORTED with Allow', async () => {
      expectOciError(await c.get(`/v2/${repo}/nothing/here`), 404, 'NAME_UNKNOWN');
      const cases: [string, string, string][] = [
        ['PATCH', `/v2/${repo}/manifests/latest`, 'DELETE, GET, HEAD, PUT'],
        ['POST', `/v2/${repo}/blobs/${img.config.digest}`, 'DELETE, GET, HEAD'],
        ['OPTIONS', '/v2/', 'GET, HEAD'],
        ['PUT', '/v2/_catalog', 'GET'],
        ['HEAD', `/v2/${repo}/tags/list`, 'GET'],
        ['TRACE', `/v2/${repo}/blobs/uploads/`, 'POST'],
        ['PATCH', `/v2/${repo}/blobs/uploads/`, 'POST'],
        [
          'POST',
          `/v2/${repo}/blobs/uploads/6f1c0a52-5a55-4c1e-9d67-3c0b1e6f0a11`,
          'DELETE, GET, PATCH, PUT',
        ],
      ];
      for (const [method, path, allow] of cases) {
        const res = await c.request(method, path);
        if (method !== 'HEAD') expectOciError(res, 405, 'UNSUPPORTED');
        expect([method, path, res.status, res.headers.allow]).toEqual([method, path, 405, allow]);
      }
    });
  });

  describe('query parameters', () => {
    it('n that is not decimal digits, or n/last given twice: 400 UNSUPPORTED on tag lists and the catalog', async () => {
      expect((await c.putManifest(repo, 'paged', img.manifest)).status).toBe(201);
      const bad: Record<string, string | string[]>[] = [
        { n: '1e3' },
        { n: '0x10' },
        { n: ' 1' },
        { n: '+1' },
        { n: ['1', '1000'] },
        { n: '1', last: ['a', 'z'] },
      ];
      for (const query of bad) {
        expectOciError(await c.get(`/v2/${repo}/tags/list`, { query }), 400, 'UNSUPPORTED');
        expectOciError(await c.get('/v2/_catalog', { query }), 400, 'UNSUPPORTED');
      }
      const ok = await c.get(`/v2/${repo}/tags/list`, { query: { n: '1000' } });
      expect(ok.json()).toMatchObject({ tags: expect.arrayContaining(['paged']) as unknown });
    });

    it('digest, mount, from or artifactType given twice: 400, and the upload or repository is unchanged', async () => {
      const b = randomBlob(32);
      const loc = location(await c.startUpload(repo));
      expect((await c.patch(loc, { headers: OCTET, body: b.bytes })).status).toBe(202);
      const twice = { digest: [b.digest, img.config.digest] };
      expectOciError(await c.put(loc, { query: twice }), 400, 'UNSUPPORTED');
      const status = await c.get(loc);
      expect([status.status, status.header('range')]).toEqual([204, `0-${b.size - 1}`]);
      expectOciError(await c.head(`/v2/${repo}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
      expect((await c.put(loc, { query: { digest: b.digest } })).status).toBe(201);

      const target = 'bad/mount-target';
      for (const query of [
        { mount: [b.digest, img.config.digest], from: repo },
        { mount: b.digest, from: [repo, repo] },
      ]) {
        const res = await c.post(`/v2/${target}/blobs/uploads/`, { query });
        expectOciError(res, 400, 'UNSUPPORTED');
        expect(res.header('location')).toBeUndefined();
      }
      expectOciError(await c.head(`/v2/${target}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');

      const query = { artifactType: ['application/x.a', 'application/x.b'] };
      const referrers = `/v2/${repo}/referrers/${img.manifest.digest}`;
      expectOciError(await c.get(referrers, { query }), 400, 'UNSUPPORTED');
    });
  });

  describe('ranges', () => {
    it('an unsatisfiable or malformed Range on a blob: 416 with Content-Range bytes */size', async () => {
      const layer = img.layers[0]!;
      for (const range of [`bytes=${layer.size}-`, 'bytes=10-5', 'bytes=x-y', 'bytes=-0']) {
        const res = await c.get(`/v2/${repo}/blobs/${layer.digest}`, { headers: { Range: range } });
        expectOciError(res, 416, 'SIZE_INVALID');
        expect(res.header('content-range')).toBe(`bytes */${layer.size}`);
      }
    });

    it('a malformed or out-of-order Content-Range on a chunk: 416 BLOB_UPLOAD_INVALID, session intact', async () => {
      const loc = location(await c.startUpload(repo));
      for (const cr of ['abc', '5-10', '0-', '3-1']) {
        expectOciError(
          await c.patch(loc, { headers: { ...OCTET, 'Content-Range': cr }, body: 'hello' }),
          416,
          'BLOB_UPLOAD_INVALID',
        );
      }
      const ok = await c.patch(loc, {
        headers: { ...OCTET, 'Content-Range': '0-4' },
        body: 'hello',
      });
      expect(ok.status).toBe(202);
      expect(ok.header('range')).toBe('0-4');
    });
  });

  describe('upload sessions', () => {
    const unknown = '6f1c0a52-5a55-4c1e-9d67-3c0b1e6f0a11';

    it('an unknown upload id: 404 BLOB_UPLOAD_UNKNOWN on every method', async () => {
      for (const id of [unknown, 'not-a-uuid', '..']) {
        const path = `/v2/${repo}/blobs/uploads/${id}`;
        expectOciError(await c.get(path), 404, 'BLOB_UPLOAD_UNKNOWN');
        expectOciError(
          await c.patch(path, { headers: OCTET, body: 'x' }),
          404,
          'BLOB_UPLOAD_UNKNOWN',
        );
        expectOciError(
          await c.put(path, { query: { digest: img.config.digest } }),
          404,
          'BLOB_UPLOAD_UNKNOWN',
        );
        expectOciError(await c.delete(path), 404, 'BLOB_UPLOAD_UNKNOWN');
      }
    });

    it("another repository's session is unknown here", async () => {
      const loc = location(await c.startUpload(repo));
      const id = loc.split('/').pop()!;
      expectOciError(await c.get(`/v2/bad/other/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
      expect((await c.get(loc)).status).toBe(204);
    });

    it('a client that disconnects mid-PATCH leaves nothing visible, and the session continues', async () => {
      const b = randomBlob(256 * 1024);
      const loc = location(await c.startUpload(repo));
      const id = loc.split('/').pop()!;
      await abortMidBody(node.url, 'PATCH', loc, b.size, b.bytes.subarray(0, 100 * 1024));
      // Nothing of the aborted chunk is kept: the session is where it was.
      const status = await c.get(loc);
      expect(status.status).toBe(204);
      expect(status.header('range')).toBe('0-0');
      expect(await listAllKeys(node.store, `${Layout.upload(id)}chunks/`)).toEqual([]);
      expectOciError(await c.head(`/v2/${repo}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
      expect(await exists(node.store, Layout.blobData(parseDigest(b.digest)))).toBe(false);
      // The node keeps serving, and the same session takes the whole blob.
      expect((await c.get('/v2/')).status).toBe(200);
      const patch = await c.patch(loc, { headers: OCTET, body: b.bytes });
      expect(patch.status).toBe(202);
      const put = await c.put(location(patch), { query: { digest: b.digest }, headers: OCTET });
      expect(put.status).toBe(201);
      expect((await c.get(location(put))).body.equals(b.bytes)).toBe(true);
    });

    it.each([
      ['a large', 256 * 1024],
      ['a small', 20 * 1024], // handled in memory (under 64 KiB)
    ])(
      'a client that disconnects mid single-POST or mid closing PUT of %s blob leaves no blob',
      async (_what, size) => {
        const b = randomBlob(size);
        const half = b.bytes.subarray(0, size / 4);
        await abortMidBody(
          node.url,
          'POST',
          `/v2/${repo}/blobs/uploads/?digest=${b.digest}`,
          b.size,
          half,
        );
        const loc = location(await c.startUpload(repo));
        await abortMidBody(
          node.url,
          'PUT',
          `${loc}?digest=${encodeURIComponent(b.digest)}`,
          b.size,
          half,
        );
        expectOciError(await c.head(`/v2/${repo}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
        expect(await exists(node.store, Layout.blobData(parseDigest(b.digest)))).toBe(false);
        expect((await c.get('/v2/')).status).toBe(200);
      },
    );

    it('a client that goes away mid-download: the node lets go of the blob and keeps serving', async () => {
      const b = randomBlob(32 * 1024 * 1024);
      expect((await c.uploadBlob(repo, b)).status).toBe(201);
      const u = new URL(node.url);
      const received = await new Promise<number>((resolve) => {
        let n = 0;
        const req = httpRequest(
          { host: u.hostname, port: u.port, path: `/v2/${repo}/blobs/${b.digest}`, agent: false },
          (res) => {
            res.on('data', (chunk: Buffer) => {
              n += chunk.length;
              // Stop reading after the first bytes: the server's writes back up, then the
              // connection goes away under them.
              if (n >= 64 * 1024) {
                res.pause();
                setTimeout(() => req.destroy(), 100);
              }
            });
          },
        );
        req.on('close', () => resolve(n));
        req.on('error', () => undefined);
        req.end();
      });
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(b.size);
      await sleep(300);
      if (storage === 'fs') {
        // No descriptor of this process still points at the blob's file.
        const file = Layout.blobData(parseDigest(b.digest));
        const open = readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`).endsWith(file);
          } catch {
            return false;
          }
        });
        expect(open).toEqual([]);
      }
      const whole = await c.get(`/v2/${repo}/blobs/${b.digest}`);
      expect(whole.status).toBe(200);
      expect(whole.body.equals(b.bytes)).toBe(true);
      const part = await c.get(`/v2/${repo}/blobs/${b.digest}`, {
        headers: { Range: 'bytes=3000000-5999999' },
      });
      expect(part.status).toBe(206);
      expect(part.body.equals(b.bytes.subarray(3_000_000, 6_000_000))).toBe(true);
    });

    it('a session survives a node restart on the same storage', async () => {
      const b = randomBlob(2000);
      const first = await startTestNode({ location: node.storage });
      const c1 = new RegistryClient(first.url);
      const loc = location(await c1.startUpload(repo));
      const p1 = await c1.patch(loc, {
        headers: { ...OCTET, 'Content-Range': '0-999' },
        body: b.bytes.subarray(0, 1000),
      });
      expect(p1.status).toBe(202);
      await first.close();

      const second = await startTestNode({ location: node.storage });
      try {
        const c2 = new RegistryClient(second.url);
        const status = await c2.get(loc);
        expect(status.status).toBe(204);
        expect(status.header('range')).toBe('0-999');
        const p2 = await c2.patch(loc, {
          headers: { ...OCTET, 'Content-Range': '1000-1999' },
          body: b.bytes.subarray(1000),
        });
        expect(p2.status).toBe(202);
        const put = await c2.put(location(p2), { query: { digest: b.digest }, headers: OCTET });
        expect(put.status).toBe(201);
        expect((await c2.get(location(put))).body.equals(b.bytes)).toBe(true);
      } finally {
        await second.close();
      }
    });

    it('a session idle past the configured timeout is unknown, then purged', async () => {
      const short = await startTestNode({
        location: node.storage,
        // Wide enough that a busy CI machine never expires the session before its first PATCH.
        uploads: { idleTimeoutMs: 1500 },
      });
      try {
        const cs = new RegistryClient(short.url);
        const stale = location(await cs.startUpload(repo));
        expect((await cs.patch(stale, { headers: OCTET, body: 'early' })).status).toBe(202);
        await sleep(2000);
        expectOciError(
          await cs.patch(stale, { headers: OCTET, body: 'late' }),
          404,
          'BLOB_UPLOAD_UNKNOWN',
        );
        expectOciError(await cs.get(stale), 404, 'BLOB_UPLOAD_UNKNOWN');
        expectOciError(
          await cs.put(stale, { query: { digest: img.config.digest } }),
          404,
          'BLOB_UPLOAD_UNKNOWN',
        );
        // A fresh session on the same node is fine.
        const fresh = location(await cs.startUpload(repo));
        expect((await cs.get(fresh)).status).toBe(204);
        // The purge removes the idle session's state and chunks.
        expect(await short.registry.uploads.purgeExpired()).toBeGreaterThanOrEqual(1);
        const staleId = stale.split('/').pop()!;
        expect(await listAllKeys(short.store, Layout.upload(staleId))).toEqual([]);
      } finally {
        await short.close();
      }
    });
  });

  it('every error above was JSON; a 5xx never leaks a stack trace', async () => {
    // A blob whose data vanished under its link is an internal inconsistency, not a client error.
    const b: ImageBlob = blobOf('orphan link');
    expect((await c.uploadBlob(repo, b)).status).toBe(201);
    await node.store.delete(Layout.blobData(parseDigest(b.digest)));
    const res = await c.get(`/v2/${repo}/blobs/${b.digest}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.toString()).not.toMatch(/\n\s+at /);
    ociErrors(res);
  });
});

function SPEC(code: string): boolean {
  return /^[A-Z_]+$/.test(code) && code !== 'UNKNOWN';
}
