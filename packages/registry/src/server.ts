import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp, type AppDeps } from './app';
import { BODY_IDLE_TIMEOUT_MS, watchBodyIdle } from './http/body-idle';

export interface NodeServerOptions extends AppDeps {
  /** `host:port`; port 0 picks a free port. */
  listen: string;
  /** How often expired upload sessions are purged, in ms. Default 5 minutes; 0 disables. */
  purgeIntervalMs?: number;
  /**
   * A request whose client sends no byte of its announced body for this long is ended (its
   * connection closed). Default 60 000 (`BODY_IDLE_TIMEOUT_MS`); 0 disables.
   */
  bodyIdleTimeoutMs?: number;
  /** PEM certificate and key: serve HTTPS. Default none (plain HTTP). */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export interface RunningNode {
  server: Server;
  /** `http://host:port` */
  url: string;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = i > 0 ? listen.slice(0, i).replace(/^\[|\]$/g, '') : '0.0.0.0';
  const port = Number(i >= 0 ? listen.slice(i + 1) : listen);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`invalid listen address: ${listen}`);
  return { host, port };
}

/** Starts an HTTP server for a node and the upload-session purge timer. */
export async function startNodeServer(opts: NodeServerOptions): Promise<RunningNode> {
  const app = createApp(opts);
  const httpOpts = { keepAliveTimeout: 65_000, requestTimeout: 0 };
  const idleMs = opts.bodyIdleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS;
  const listener: RequestListener = (req, res) => {
    watchBodyIdle(req, idleMs);
    app.listener(req, res);
  };
  const server: Server = opts.tls
    ? createTlsServer({ ...httpOpts, cert: opts.tls.cert, key: opts.tls.key }, listener)
    : createServer(httpOpts, listener);
  server.headersTimeout = 60_000;
  const { host, port } = parseListen(opts.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `${opts.tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  const purgeEvery = opts.purgeIntervalMs ?? 300_000;
  const timer =
    purgeEvery > 0
      ? setInterval(() => void purge(opts.registry.uploads, opts.log), purgeEvery)
      : undefined;
  timer?.unref();
  return {
    server,
    url,
    close: async () => {
      if (timer) clearInterval(timer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function purge(uploads: { purgeExpired(): Promise<number> }, log: Logger): Promise<void> {
  try {
    const n = await uploads.purgeExpired();
    if (n > 0) log.info({ purged: n }, 'expired upload sessions purged');
  } catch (err) {
    log.warn({ err }, 'upload purge failed');
  }
}
