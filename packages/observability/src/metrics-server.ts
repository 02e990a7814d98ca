import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register } from 'prom-client';
import { OciError, parseRequestTarget } from '@meridian/oci';

/**
 * `/metrics` and `/healthz` for every Meridian process, over the process's prom-client registry:
 * workers serve them on a listener of their own (`startMetricsServer`), the gateway on its
 * global endpoint (`answerObservability`), nodes through their route table (`metricsBody`, so
 * `auth.protectMetrics` applies). One module, so the three answer alike.
 */
export const HEALTH_BODY = '{"status":"ok"}';

/** The Prometheus text of this process and its content type. */
export async function metricsBody(): Promise<{ contentType: string; body: string }> {
  return { contentType: register.contentType, body: await register.metrics() };
}

function fail(res: ServerResponse, err: OciError, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(err.toBody());
  res.writeHead(err.status, { ...headers, 'Content-Type': 'application/json' }).end(body);
}

/**
 * Answers `GET|HEAD /metrics` and `/healthz` on a plain node listener; returns false (and writes
 * nothing) for any other path.
 */
export function answerObservability(
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  if (path !== '/metrics' && path !== '/healthz') return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    fail(res, new OciError('UNSUPPORTED', `${req.method} is not supported on this endpoint`), {
      Allow: 'GET, HEAD',
    });
  } else if (path === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(HEALTH_BODY);
  } else {
    metricsBody().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'Content-Type': contentType }).end(body);
      },
      () => {
        fail(res, new OciError('UNKNOWN', 'collecting metrics failed'));
      },
    );
  }
  return true;
}

export interface MetricsServer {
  /** `http://host:port` */
  url: string;
  close(): Promise<void>;
}

/** A listener serving only `/metrics` and `/healthz`, for processes that serve no API (workers). */
export async function startMetricsServer(host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = parseRequestTarget(req.url)?.path;
    if (path === undefined)
      fail(res, new OciError('UNSUPPORTED', 'malformed request target', undefined, 400));
    else if (!answerObservability(path, req, res))
      fail(res, new OciError('NAME_UNKNOWN', 'unknown API endpoint', undefined, 404));
  });
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
