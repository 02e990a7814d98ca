/**
 * A client that announces a body and stops sending it (a crashed host sends no FIN) must not hold
 * its request forever: the node closes the connection once the body has been idle for
 * `bodyIdleTimeoutMs`, nothing half-written becomes visible, and the upload session it was
 * writing is free for the client's retry (ADR 0007's one writer per session). A slow body that
 * keeps arriving is never cut.
 */
import { connect, type Socket } from 'node:net';
import { startTestNode, type TestNode } from './helpers/node';
import { RegistryClient, expectOciError, location } from './helpers/http';
import { image, randomBlob } from './helpers/images';
import { waitFor } from './helpers/wait';

const IDLE_MS = 400;
const OCTET = { 'Content-Type': 'application/octet-stream' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens a raw connection and sends a request head plus the first bytes of its body. */
function startRequest(url: string, head: string, body: Buffer): Promise<Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => {
      s.write(head + '\r\n\r\n');
      s.write(body, () => resolve(s));
    });
    s.on('error', reject);
  });
}

/** Whether the server closes `s` within `bound` ms (far beyond the idle timeout). */
function closedByServer(s: Socket, bound = 30 * IDLE_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), bound);
    s.resume();
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

describe('a request body that stops arriving', () => {
  let node: TestNode;
  let c: RegistryClient;
  const repo = 'stalled/body';

  beforeAll(async () => {
    node = await startTestNode({ storage: 'fs', bodyIdleTimeoutMs: IDLE_MS });
    c = new RegistryClient(node.url);
  });
  afterAll(async () => {
    await node?.close();
  });

  it('a stalled PATCH is ended; the session keeps no partial chunk and takes the retry', async () => {
    const b = randomBlob(64);
    const loc = location(await c.startUpload(repo));
    const s = await startRequest(
      node.url,
      `PATCH ${loc} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n` +
        `Content-Length: ${b.size}\r\nContent-Range: 0-${b.size - 1}`,
      b.bytes.subarray(0, 10),
    );
    expect(await closedByServer(s)).toBe(true);
    const status = await c.get(loc);
    expect([status.status, status.header('range')]).toEqual([204, '0-0']);
    // The aborted write lets go of the session as its handler unwinds, just after the close.
    const retry = await waitFor(async () => {
      const r = await c.patch(loc, {
        headers: { ...OCTET, 'Content-Range': `0-${b.size - 1}` },
        body: b.bytes,
      });
      return r.status === 416 ? undefined : r;
    }, 'the session to take a retry');
    expect([retry.status, retry.header('range')]).toEqual([202, `0-${b.size - 1}`]);
    expect((await c.put(loc, { query: { digest: b.digest } })).status).toBe(201);
  });

  it('a stalled manifest PUT is ended and no tag appears', async () => {
    const img = image();
    for (const blob of img.blobs) expect((await c.uploadBlob(repo, blob)).status).toBe(201);
    const s = await startRequest(
      node.url,
      `PUT /v2/${repo}/manifests/stalled HTTP/1.1\r\nHost: x\r\n` +
        `Content-Type: ${img.manifest.mediaType}\r\nContent-Length: ${img.manifest.size}`,
      img.manifest.bytes.subarray(0, 20),
    );
    expect(await closedByServer(s)).toBe(true);
    expectOciError(await c.get(`/v2/${repo}/manifests/stalled`), 404, 'MANIFEST_UNKNOWN');
    expect((await c.get(`/v2/${repo}/tags/list`)).json()).toMatchObject({ tags: [] });
  });

  it('a slow body that keeps arriving is never cut', async () => {
    const b = randomBlob(10 * 8);
    const loc = location(await c.startUpload(repo));
    const s = await startRequest(
      node.url,
      `PATCH ${loc} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n` +
        `Content-Length: ${b.size}\r\nConnection: close`,
      Buffer.alloc(0),
    );
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    const done = new Promise<void>((r) => s.once('close', () => r()));
    // Ten pieces, IDLE_MS / 4 apart: the whole body takes 2.5 idle periods.
    for (let i = 0; i < 10; i++) {
      await sleep(IDLE_MS / 4);
      s.write(b.bytes.subarray(i * 8, i * 8 + 8));
    }
    await done;
    expect(answer).toMatch(/^HTTP\/1\.1 202 /);
    expect(answer).toMatch(new RegExp(`\\r\\nRange: 0-${b.size - 1}\\r\\n`, 'i'));
  });
});
