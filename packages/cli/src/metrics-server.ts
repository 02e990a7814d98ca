import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register } from 'prom-client';
import { OciError, parseRequestTarget } from '@meridian/oci';
import { parseListen } from '@meridian/registry';

export interface MetricsServer {
  /** `http://host:port` */
  url: string;
  close(): Promise<void>;
}

/**
 * A minimal HTTP listener for processes that serve no API (workers): `GET /metrics` (the
 * process's prom-client registry) and `GET /healthz`, so Prometheus can scrape them.
 */
export async function startMetricsServer(listen: string): Promise<MetricsServer> {
  const fail = (res: ServerResponse, err: OciError, headers: Record<string, string> = {}) => {
    const body = JSON.stringify(err.toBody());
    res.writeHead(err.status, { ...headers, 'Content-Type': 'application/json' }).end(body);
  };
  const server: Server = createServer((req, res) => {
    const path = parseRequestTarget(req.url)?.path;
    if (path === undefined) {
      fail(res, new OciError('UNSUPPORTED', 'malformed request target', undefined, 400));
    } else if (path !== '/metrics' && path !== '/healthz') {
      fail(res, new OciError('NAME_UNKNOWN', 'unknown API endpoint', undefined, 404));
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      fail(res, new OciError('UNSUPPORTED', `${req.method} is not supported on this endpoint`), {
        Allow: 'GET, HEAD',
      });
    } else if (path === '/metrics') {
      register.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': register.contentType }).end(text);
        },
        () => {
          fail(res, new OciError('UNKNOWN', 'collecting metrics failed'));
        },
      );
    } else {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
    }
  });
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
