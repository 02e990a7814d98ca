/**
 * Upload integrity (issue 10, §2 and §5): one writer per upload session, a blob key only ever
 * written with bytes that hash to its digest, a stored blob of the wrong size replaced by a
 * verified upload, `meridian storage verify`, and client mistakes answered as client mistakes
 * (never as a storage outage).
 */
import { request as httpRequest } from 'node:http';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { parseDigest } from '@meridian/oci';
import { Registry, startNodeServer } from '@meridian/registry';
import { Layout, exists, openStore } from '@meridian/storage';
import { storageVerify } from '../packages/cli/src/storage-cmd';
import { newStorage, startTestNode, type StorageKind, type TestNode } from './helpers/node';
import { RegistryClient, expectOciError, location, type HttpResponse } from './helpers/http';
import { blobOf, digestOf, randomBlob } from './helpers/images';

const OCTET = { 'Content-Type': 'application/octet-stream' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A request whose body the test sends piece by piece; `response` settles when the server answers. */
function openRequest(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string | number>,
): {
  write(b: Buffer): Promise<void>;
  end(b?: Buffer): void;
  destroy(): void;
  response: Promise<HttpResponse>;
} {
  const u = new URL(baseUrl);
  const req = httpRequest({ host: u.hostname, port: u.port, method, path, agent: false, headers });
  const response = new Promise<HttpResponse>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          method,
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          header: (name) => {
            const v = res.headers[name.toLowerCase()];
            return Array.isArray(v) ? v[0] : v;
          },
          json: <T>() => JSON.parse(body.toString('utf8')) as T,
        });
      });
    });
  });
  response.catch(() => {});
  return {
    write: (b) =>
      new Promise<void>((resolve, reject) => req.write(b, (e) => (e ? reject(e) : resolve()))),
    end: (b) => req.end(b),
    destroy: () => req.destroy(),
    response,
  };
}

/** The value of an unlabelled-or-summed counter in a node's `/metrics`. */
async function counter(c: RegistryClient, name: string): Promise<number> {
  const text = (await c.get('/metrics')).body.toString();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      total += Number(line.split(' ').pop());
  }
  return total;
}

describe.each<StorageKind>(['fs', 's3'])('upload integrity (%s storage)', (storage) => {
  let node: TestNode;
  let c: RegistryClient;

  beforeAll(async () => {
    node = await startTestNode({ storage });
    c = new RegistryClient(node.url);
  });
  afterAll(async () => {
    await node?.close();
  });

  describe('one writer per upload session', () => {
    it('a PATCH while another is writing to the session gets 416, and only bytes that hash to the digest are ever committed', async () => {
      const repo = 'integrity/race';
      const a = randomBlob(1000);
      const b = randomBlob(1000);
      const loc = location(await c.startUpload(repo));
      const first = openRequest(node.url, 'PATCH', loc, { ...OCTET, 'Content-Length': 1000 });
      await first.write(a.bytes.subarray(0, 500));
      await sleep(200); // the first PATCH is now streaming into storage
      const second = await c.patch(loc, { headers: OCTET, body: b.bytes });
      expectOciError(second, 416, 'BLOB_UPLOAD_INVALID');
      first.end(a.bytes.subarray(500));
      const done = await first.response;
      expect(done.status).toBe(202);
      expect(done.header('range')).toBe('0-999');
      // The session holds A alone: a commit under sha256(A+B) is refused and nothing is served.
      const ab = digestOf(Buffer.concat([a.bytes, b.bytes]));
      const status = await c.get(loc);
      expect(status.status).toBe(204);
      expect(status.header('range')).toBe('0-999');
      expectOciError(
        await c.put(loc, { query: { digest: ab }, headers: OCTET }),
        400,
        'DIGEST_INVALID',
      );
      expectOciError(await c.get(`/v2/${repo}/blobs/${ab}`), 404, 'BLOB_UNKNOWN');
      expect(await exists(node.store, Layout.blobData(parseDigest(ab)))).toBe(false);
    });

    it('after the race the session continues from what was stored and commits exactly those bytes', async () => {
      const repo = 'integrity/race-continue';
      const a = randomBlob(1000);
      const b = randomBlob(1000);
      const loc = location(await c.startUpload(repo));
      const first = openRequest(node.url, 'PATCH', loc, { ...OCTET, 'Content-Length': 1000 });
      await first.write(a.bytes.subarray(0, 500));
      await sleep(200);
      const closing = await c.put(loc, {
        query: { digest: a.digest },
        headers: OCTET,
        body: b.bytes,
      });
      expectOciError(closing, 416, 'BLOB_UPLOAD_INVALID');
      first.end(a.bytes.subarray(500));
      expect((await first.response).status).toBe(202);
      const put = await c.put(loc, { query: { digest: a.digest }, headers: OCTET });
      expect(put.status).toBe(201);
      const got = await c.get(`/v2/${repo}/blobs/${a.digest}`);
      expect(got.status).toBe(200);
      expect(got.body.equals(a.bytes)).toBe(true);
    });
  });

  describe('a stored blob of the wrong size is corrupt: a verified upload replaces it', () => {
    const paths: [
      string,
      (repo: string, blob: ReturnType<typeof randomBlob>) => Promise<HttpResponse>,
    ][] = [
      ['POST then PUT with the whole body (small)', (repo, blob) => c.uploadBlob(repo, blob)],
      [
        'POST ?digest= (large)',
        (repo, blob) =>
          c.post(`/v2/${repo}/blobs/uploads/`, {
            query: { digest: blob.digest },
            headers: OCTET,
            body: blob.bytes,
          }),
      ],
      [
        'PATCH then PUT',
        async (repo, blob) => {
          const patch = await c.patch(location(await c.startUpload(repo)), {
            headers: OCTET,
            body: blob.bytes,
          });
          return c.put(location(patch), { query: { digest: blob.digest }, headers: OCTET });
        },
      ],
    ];
    it.each(paths)('%s', async (what, push) => {
      const blob = randomBlob(what.includes('small') ? 1000 : 300 * 1024);
      const key = Layout.blobData(parseDigest(blob.digest));
      // A poisoned copy (as the old race left): the digest's key holds other, shorter bytes.
      await node.store.put(key, blob.bytes.subarray(0, 100));
      const before = await counter(c, 'meridian_storage_corrupt_blobs_replaced_total');
      const res = await push('integrity/honest', blob);
      expect(res.status).toBe(201);
      const got = await c.get(`/v2/integrity/honest/blobs/${blob.digest}`);
      expect(got.status).toBe(200);
      expect(got.body.equals(blob.bytes)).toBe(true);
      expect((await node.store.head(key)).size).toBe(blob.size);
      expect(await counter(c, 'meridian_storage_corrupt_blobs_replaced_total')).toBe(before + 1);
    });

    it('a wrong upload over a corrupt blob changes nothing', async () => {
      const blob = randomBlob(2000);
      const key = Layout.blobData(parseDigest(blob.digest));
      await node.store.put(key, blob.bytes.subarray(0, 100));
      const wrong = { digest: blob.digest, bytes: randomBlob(2000).bytes };
      expectOciError(await c.uploadBlob('integrity/wrong', wrong), 400, 'DIGEST_INVALID');
      expect((await node.store.getBytes(key)).equals(blob.bytes.subarray(0, 100))).toBe(true);
      expectOciError(await c.get(`/v2/integrity/wrong/blobs/${blob.digest}`), 404, 'BLOB_UNKNOWN');
    });
  });

  describe('client mistakes are client errors', () => {
    /** A PATCH sent with chunked transfer encoding (no Content-Length), so only Content-Range declares a size. */
    async function chunkedPatch(path: string, range: string, body: Buffer): Promise<HttpResponse> {
      const r = openRequest(node.url, 'PATCH', path, {
        ...OCTET,
        'Transfer-Encoding': 'chunked',
        'Content-Range': range,
      });
      r.end(body);
      return r.response;
    }

    it.each([
      ['shorter', 600],
      ['longer', 1400],
    ])(
      'a chunk %s than its Content-Range: 400 BLOB_UPLOAD_INVALID, the session unchanged',
      async (_what, n) => {
        const repo = 'integrity/range';
        const blob = randomBlob(n);
        const loc = location(await c.startUpload(repo));
        expectOciError(await chunkedPatch(loc, '0-999', blob.bytes), 400, 'BLOB_UPLOAD_INVALID');
        const status = await c.get(loc);
        expect(status.status).toBe(204);
        expect(status.header('range')).toBe('0-0');
        // The session still takes a correct chunk.
        const ok = await chunkedPatch(loc, `0-${n - 1}`, blob.bytes);
        expect(ok.status).toBe(202);
        expect(
          (await c.put(location(ok), { query: { digest: blob.digest }, headers: OCTET })).status,
        ).toBe(201);
      },
    );

    it.each([
      ['0-99999999999999999999', 'Content-Length'],
      ['0-99999999999999999999', 'chunked'],
      ['0-9007199254740993', 'chunked'],
      ['99999999999999999999-99999999999999999999', 'Content-Length'],
    ])('Content-Range %s (%s body): 416 BLOB_UPLOAD_INVALID', async (range, framing) => {
      const loc = location(await c.startUpload('integrity/range'));
      const res =
        framing === 'chunked'
          ? await chunkedPatch(loc, range, Buffer.from('x'))
          : await c.patch(loc, { headers: { ...OCTET, 'Content-Range': range }, body: 'x' });
      expectOciError(res, 416, 'BLOB_UPLOAD_INVALID');
      expect((await c.get(loc)).header('range')).toBe('0-0');
    });
  });
});

describe.each<StorageKind>(['fs', 's3'])(
  'a client that disconnects mid-upload (%s storage)',
  (storage) => {
    it.each([
      ['PATCH', 256 * 1024],
      ['PATCH (multipart on S3)', 6 * 1024 * 1024],
      ['PUT (small)', 20 * 1024],
      ['PUT (large)', 256 * 1024],
    ])('mid-%s is logged at info as a client abort, never as an error', async (method, size) => {
      const storageDir = await newStorage(storage);
      const dir = storageDir.location;
      const store = await openStore(dir, { partSize: 5 * 1024 * 1024 });
      type Line = { level: number; msg: string; [k: string]: unknown };
      const lines: Line[] = [];
      const sink = new PassThrough();
      sink.on('data', (d: Buffer) => {
        for (const l of d.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
      });
      const log = pino({ level: 'info' }, sink);
      const server = await startNodeServer({
        registry: new Registry({ store }),
        log,
        listen: '127.0.0.1:0',
        purgeIntervalMs: 0,
      });
      try {
        const c = new RegistryClient(server.url);
        const blob = randomBlob(size);
        const loc = location(await c.startUpload('integrity/abort'));
        const verb = method.split(' ')[0]!;
        const path = verb === 'PUT' ? `${loc}?digest=${blob.digest}` : loc;
        const r = openRequest(server.url, verb, path, { ...OCTET, 'Content-Length': size });
        await r.write(blob.bytes.subarray(0, size / 4));
        await sleep(100);
        r.destroy();
        await sleep(400);
        const request = lines.find((l) => l.msg === 'request' && l.method === verb);
        expect(request).toBeDefined();
        expect(request!.level).toBe(30);
        expect(lines.filter((l) => l.level >= 40)).toEqual([]);
        expect(await exists(store, Layout.blobData(parseDigest(blob.digest)))).toBe(false);
      } finally {
        await server.close();
        await store.close();
        storageDir.cleanup();
      }
    });
  },
);

describe.each<StorageKind>(['fs', 's3'])('meridian storage verify (%s storage)', (storage) => {
  it('reports blobs whose bytes do not hash to their digest; --repair quarantines them so they are not served', async () => {
    const node = await startTestNode({ storage });
    try {
      const c = new RegistryClient(node.url);
      const repo = 'integrity/verify';
      const good = randomBlob(200 * 1024);
      const flipped = randomBlob(3000);
      const short = randomBlob(3000);
      for (const b of [good, flipped, short])
        expect((await c.uploadBlob(repo, b)).status).toBe(201);
      const bad = Buffer.from(flipped.bytes);
      bad[10] = bad[10]! ^ 0xff; // same size: no upload would notice
      await node.store.put(Layout.blobData(parseDigest(flipped.digest)), bad);
      await node.store.put(Layout.blobData(parseDigest(short.digest)), short.bytes.subarray(0, 10));

      const run = async (repair: boolean) => {
        const out: string[] = [];
        const err: string[] = [];
        const code = await storageVerify(
          { storage: node.storage, repair, rate: 100 },
          { out: (s) => out.push(s), err: (s) => err.push(s) },
        );
        return { code, out: out.join(''), err: err.join('') };
      };
      const check = await run(false);
      expect(check.code).toBe(1);
      expect(check.out).toContain(flipped.digest);
      expect(check.out).toContain(short.digest);
      expect(check.out).not.toContain(good.digest);
      expect(check.err).toMatch(/3\/3 blobs/);
      // Without --repair nothing moves.
      expect((await c.get(`/v2/${repo}/blobs/${flipped.digest}`)).status).toBe(200);

      const repair = await run(true);
      expect(repair.code).toBe(1);
      expect(repair.out).toMatch(/quarantined/);
      for (const b of [flipped, short]) {
        expectOciError(await c.get(`/v2/${repo}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
        expect(
          await exists(node.store, `_quarantine/${Layout.blobData(parseDigest(b.digest))}`),
        ).toBe(true);
      }
      const g = await c.get(`/v2/${repo}/blobs/${good.digest}`);
      expect(g.body.equals(good.bytes)).toBe(true);
      // An honest push brings a quarantined blob back.
      expect((await c.uploadBlob(repo, flipped)).status).toBe(201);
      expect((await c.get(`/v2/${repo}/blobs/${flipped.digest}`)).body.equals(flipped.bytes)).toBe(
        true,
      );

      const clean = await run(false);
      expect(clean.code).toBe(0);
      expect(clean.err).toMatch(/2\/2 blobs/);
      expect(clean.out).toMatch(/0 mismatches/);
    } finally {
      await node.close();
    }
  });

  it('an empty blob verifies', async () => {
    const node = await startTestNode({ storage });
    try {
      const c = new RegistryClient(node.url);
      expect((await c.uploadBlob('integrity/empty', blobOf(''))).status).toBe(201);
      const out: string[] = [];
      const code = await storageVerify(
        { storage: node.storage },
        { out: (s) => out.push(s), err: () => {} },
      );
      expect(code).toBe(0);
    } finally {
      await node.close();
    }
  });
});
