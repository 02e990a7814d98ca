/**
 * Large blobs that never sit in memory: deterministic pseudo-random bytes (AES-CTR over zeros,
 * from a seed) generated chunk by chunk, so a test can push a 64–256 MiB layer and check what
 * comes back against its digest without holding either.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const CHUNK = 1024 * 1024;

export interface StreamedBlob {
  digest: string;
  size: number;
  /** A fresh stream of the blob's bytes. */
  open(): Readable;
}

/** `size` bytes derived from `seed`; the digest is computed by reading them once. */
export async function streamedBlob(size: number, seed: string): Promise<StreamedBlob> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const open = (): Readable => {
    const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
    const zeros = Buffer.alloc(CHUNK);
    let left = size;
    return new Readable({
      read() {
        if (left === 0) return void this.push(null);
        const n = Math.min(CHUNK, left);
        left -= n;
        this.push(cipher.update(zeros.subarray(0, n)));
      },
    });
  };
  const hash = createHash('sha256');
  for await (const chunk of open()) hash.update(chunk as Buffer);
  return { digest: `sha256:${hash.digest('hex')}`, size, open };
}

/** Pushes a streamed blob (POST, then one PUT with the body); resolves on the 201. */
export async function pushStreamed(baseUrl: string, repo: string, blob: StreamedBlob) {
  const post = await fetch(`${baseUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.body?.cancel();
  const loc = post.headers.get('location');
  if (post.status !== 202 || !loc) throw new Error(`POST upload: ${post.status}`);
  const url = new URL(loc, baseUrl);
  url.searchParams.set('digest', blob.digest);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'PUT',
        agent: false,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': blob.size },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    pipeline(blob.open(), req).catch(reject);
  });
  if (status !== 201) throw new Error(`PUT upload of ${blob.digest}: ${status}`);
}

export interface BlobPull {
  status: number;
  received: number;
  /** `complete`: every byte of Content-Length arrived; `aborted`: the connection was cut. */
  outcome: 'complete' | 'aborted' | 'refused';
  digest: string;
  /** `refused`: the client's error (no response came). */
  error?: string;
}

/**
 * The pulls that are neither the whole, right blob nor a clear failure (an aborted stream or a
 * `503`): what a pull must never end as, e.g. a reset without any answer.
 */
export function unclearPulls(results: BlobPull[], digest: string): BlobPull[] {
  return results.filter(
    (r) =>
      !(r.outcome === 'complete' && r.status === 200 && r.digest === digest) &&
      !(r.outcome === 'aborted' || r.status === 503),
  );
}

/** GETs a blob as a client would, hashing it as it arrives (nothing is kept). */
export function pullBlob(url: string): Promise<BlobPull> {
  return new Promise((done) => {
    const req = request(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let received = 0;
      const expected = Number(res.headers['content-length']);
      res.on('data', (c: Buffer) => {
        hash.update(c);
        received += c.length;
      });
      res.on('error', () => {}); // an aborted response ends in 'close'
      res.on('close', () =>
        done({
          status: res.statusCode ?? 0,
          received,
          outcome: received === expected && res.complete ? 'complete' : 'aborted',
          digest: `sha256:${hash.digest('hex')}`,
        }),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      done({
        status: 0,
        received: 0,
        outcome: 'refused',
        digest: '',
        error: `${err.code ?? ''} ${err.message}`,
      }),
    );
    req.end();
  });
}
