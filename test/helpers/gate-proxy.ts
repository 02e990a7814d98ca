/**
 * A forwarding HTTP proxy that can hold response bodies: `hold(n)` lets the first `n` bytes of
 * every response body through and holds the rest until `release()`. It shows, without timing,
 * what a server does with bytes that have arrived while the rest has not: whether its clients
 * receive them (a fill streamed as it arrives) or wait for the whole body.
 */
import { createServer, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface GateProxy {
  url: string;
  /** Lets at most `bytes` of each response body through, holds the rest. */
  hold(bytes: number): void;
  /** Lets everything held (and everything after) through. */
  release(): void;
  /** Bytes held back right now, over all responses. */
  held(): number;
  close(): Promise<void>;
}

export async function startGateProxy(target: string): Promise<GateProxy> {
  let limit = Infinity;
  const waiting = new Set<() => void>();
  let heldBytes = 0;
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const up = request(
      `${target}${req.url}`,
      { method: req.method, headers: req.headers, agent: false },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let passed = 0;
        const gate = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            const go = (): void => {
              passed += chunk.length;
              cb(null, chunk);
            };
            if (passed + chunk.length <= limit) return go();
            heldBytes += chunk.length;
            const wake = (): void => {
              waiting.delete(wake);
              heldBytes -= chunk.length;
              go();
            };
            waiting.add(wake);
          },
        });
        pipeline(upRes, gate, res).catch(() => res.destroy());
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
  const release = (): void => {
    limit = Infinity;
    for (const w of [...waiting]) w();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    hold: (bytes) => void (limit = bytes),
    release,
    held: () => heldBytes,
    close: async () => {
      release();
      const done = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await done;
    },
  };
}
