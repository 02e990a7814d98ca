import {
  request as httpRequest,
  type IncomingMessage,
  type RequestListener,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Counter, register } from 'prom-client';
import { dashboardHandler } from '@meridian/dashboard';
import type { Logger } from 'pino';
import type { HealthChecker } from './health';
import type { GatewayRegion, Topology } from './topology';

export const gatewayRequests = new Counter({
  name: 'meridian_gateway_requests_total',
  help: 'Requests the gateway sent to each region, by kind (read, write)',
  labelNames: ['region', 'kind'] as const,
  registers: [register],
});

export const gatewayFailovers = new Counter({
  name: 'meridian_gateway_failovers_total',
  help: "Reads served by another region than the client's home region because it was unhealthy",
  labelNames: ['home', 'region'] as const,
  registers: [register],
});

export interface GatewayOptions {
  topology: Topology;
  health: HealthChecker;
  log: Logger;
  /** Simulated one-way network delay between a client's home region and a region (dev). */
  latencyMs?: (home: string, region: string) => number;
  /**
   * A `GET`/`HEAD` a region has not started answering within this many ms goes to the next
   * region (and the region is marked down), so a hung region cannot hold its clients until the
   * health checks notice. Requests with a body (pushes) are never cut. 0 disables. Default 5000.
   */
  upstreamTimeoutMs?: number;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

/** Whether a request must go to the primary: anything that writes, and upload sessions. */
export function isWrite(method: string, path: string): boolean {
  // A login (docker login POSTs to the token endpoint) is served by every region, so it goes to
  // the nearest healthy one and keeps working while the primary is down.
  if (path === '/oauth2/token' || path.startsWith('/oauth2/token?')) return false;
  if (method !== 'GET' && method !== 'HEAD') return true;
  return /\/blobs\/uploads\//.test(path);
}

/**
 * The registry's global endpoint: reads go to the client's nearest healthy region, writes to the
 * primary. Bytes stream through without buffering; every response says who served it.
 */
export function createGateway(opts: GatewayOptions): RequestListener {
  const { topology, health, log } = opts;
  const dashboard = dashboardHandler(); // its JSON API calls are reads, proxied to a region
  /** Parsed region endpoints, by endpoint (parsed on first use). */
  const targets = new Map<string, URL>();
  return (req, res) => {
    const path = req.url ?? '/';
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (dashboard(req, res)) return;
    if (path === '/metrics') {
      void register.metrics().then((m) => {
        res.writeHead(200, { 'Content-Type': register.contentType });
        res.end(m);
      });
      return;
    }
    if (path === '/meridian/v1/gateway/regions') {
      return json(res, 200, {
        regions: topology.regions.map((r) => ({ ...r, ...health.state.get(r.name) })),
      });
    }
    const matchAddr =
      topology.opts.matchOn === 'destination' ? req.socket.localAddress : req.socket.remoteAddress;
    const home = topology.homeOf(matchAddr);
    const write = isWrite(req.method ?? 'GET', path);
    const candidates = write
      ? [topology.primary]
      : (() => {
          const order = topology.readOrder(home, health.latencies());
          const healthy = order.filter((r) => health.isHealthy(r.name));
          return healthy.length > 0 ? healthy : order;
        })();
    void forward(req, res, candidates, home, write);
  };

  async function forward(
    req: IncomingMessage,
    res: ServerResponse,
    candidates: GatewayRegion[],
    home: string,
    write: boolean,
  ): Promise<void> {
    // A request body can be sent once: only bodiless requests may move on to another region.
    const bodiless = req.method === 'GET' || req.method === 'HEAD';
    for (const region of bodiless ? candidates : candidates.slice(0, 1)) {
      const delay = opts.latencyMs?.(home, region.name) ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const ok = await proxyOnce(req, res, region, bodiless);
      if (ok) {
        gatewayRequests.inc({ region: region.name, kind: write ? 'write' : 'read' });
        if (!write && region.name !== home) gatewayFailovers.inc({ home, region: region.name });
        return;
      }
    }
    if (!res.headersSent)
      json(res, 503, {
        errors: [
          {
            code: 'UNAVAILABLE',
            message: write ? 'the primary region is unavailable' : 'no region is available',
          },
        ],
      });
  }

  /** Proxies to one region. Resolves false when the region could not be reached (nothing sent yet). */
  function proxyOnce(
    req: IncomingMessage,
    res: ServerResponse,
    region: GatewayRegion,
    bodiless: boolean,
  ): Promise<boolean> {
    return new Promise((resolve) => {
      let target = targets.get(region.endpoint);
      if (!target) targets.set(region.endpoint, (target = new URL(region.endpoint)));
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
      if (req.headers['transfer-encoding'])
        headers['transfer-encoding'] = req.headers['transfer-encoding'];
      headers['x-forwarded-for'] = [req.headers['x-forwarded-for'], req.socket.remoteAddress]
        .filter(Boolean)
        .join(', ');
      headers['x-forwarded-host'] = req.headers.host ?? '';
      const timeoutMs = opts.upstreamTimeoutMs ?? 5000;
      let timer: NodeJS.Timeout | undefined;
      // Regions may serve HTTPS (`--tls-cert`); the gateway speaks whatever their endpoint says.
      const up = (target.protocol === 'https:' ? httpsRequest : httpRequest)(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (upRes) => {
          clearTimeout(timer);
          const out: Record<string, string | string[]> = {};
          // headersDistinct keeps repeated headers apart: Node joins two WWW-Authenticate
          // challenges (Bearer, Basic) into one line in `headers`, which browsers cannot read.
          for (const [k, v] of Object.entries(upRes.headersDistinct))
            if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v.length === 1 ? v[0]! : v;
          out['x-meridian-region'] = region.name;
          res.writeHead(upRes.statusCode ?? 502, out);
          upRes.pipe(res);
          upRes.on('error', () => res.destroy());
          resolve(true);
        },
      );
      if (bodiless && timeoutMs > 0)
        timer = setTimeout(
          () => up.destroy(new Error(`no response within ${timeoutMs} ms`)),
          timeoutMs,
        );
      up.on('error', (err) => {
        clearTimeout(timer);
        health.reportFailure(region.name, err.message);
        log.warn({ region: region.name, err: err.message }, 'gateway: region unreachable');
        if (!res.headersSent) resolve(false);
        else res.destroy();
      });
      res.on('close', () => {
        clearTimeout(timer);
        if (!res.writableFinished) up.destroy();
      });
      if (bodiless) up.end();
      else req.pipe(up);
    });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(data),
  });
  res.end(data);
}
