/**
 * An HTTP proxy in front of a node that counts what passes: the blob GETs (and body bytes) a
 * replica asks of its primary. `cut()` makes the upstream vanish as a killed process does — every
 * open connection reset, new ones refused.
 */
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface CountingProxy {
  url: string;
  /** Blob GETs by digest. */
  blobGets: Map<string, number>;
  /** Body bytes of blob GET responses. */
  blobBytes(): number;
  /** Manifest GETs. */
  manifestGets(): number;
  /** Resets the counts. */
  reset(): void;
  /** The upstream goes away: open connections reset, new ones refused. */
  cut(): Promise<void>;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const blobGets = new Map<string, number>();
  let blobBytes = 0;
  let manifestGets = 0;
  const sockets = new Set<Socket>();
  const upstreams = new Set<IncomingMessage>();
  const server = createServer((req, res) => {
    const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
    const isGet = req.method === 'GET';
    if (blob && isGet) blobGets.set(blob[1]!, (blobGets.get(blob[1]!) ?? 0) + 1);
    if (isGet && /\/manifests\//.test(req.url ?? '')) manifestGets++;
    const up = request(
      `${target}${req.url}`,
      { method: req.method, headers: req.headers, agent: false },
      (upRes) => {
        upstreams.add(upRes);
        upRes.on('close', () => upstreams.delete(upRes));
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        const count = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            if (blob && isGet) blobBytes += chunk.length;
            cb(null, chunk);
          },
        });
        pipeline(upRes, count, res).catch(() => res.destroy());
      },
    );
    up.on('error', () => res.destroy());
    pipeline(req, up).catch(() => up.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  const cut = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const done = new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.destroy();
    for (const u of upstreams) u.destroy();
    await done;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    blobGets,
    blobBytes: () => blobBytes,
    manifestGets: () => manifestGets,
    reset: () => {
      blobGets.clear();
      blobBytes = 0;
      manifestGets = 0;
    },
    cut,
    close: cut,
  };
}
