import {
  request as httpRequest,
  type IncomingMessage,
  type RequestListener,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Counter, register } from 'prom-client';
import { dashboardHandler } from '@meridian/dashboard';
import { answerObservability } from '@meridian/observability';
import { OciError, parseRequestTarget } from '@meridian/oci';
import type { Logger } from 'pino';
import { PRIMARY_UNAVAILABLE, primaryUnavailable, sendError } from './errors';
import type { HealthChecker } from './health';
import { classify, type RequestKind } from './routing';
import { watchStall } from './stall';
import type { GatewayRegion, Topology } from './topology';

export { isWrite } from './routing';

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

export const gatewayStalls = new Counter({
  name: 'meridian_gateway_stalled_streams_total',
  help: 'Proxied streams aborted because no byte moved for gateway.stallTimeoutMs',
  labelNames: ['region', 'side'] as const,
  registers: [register],
});

/** Default for `GatewayOptions.stallTimeoutMs`. */
export const DEFAULT_GATEWAY_STALL_TIMEOUT_MS = 30_000;

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
  /**
   * Every proxied stream — a response from a region, a request body from a client, a region's
   * answer to a push — that moves no byte for this long (while its reader waits) is aborted, so
   * the client retries instead of hanging. Default 30000.
   */
  stallTimeoutMs?: number;
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

/**
 * The registry's global endpoint: reads go to the client's nearest healthy region, writes (and
 * every request of a push, see `classify`) to the primary. Bytes stream through without
 * buffering; every response says who served it; every error is the OCI error JSON.
 */
export function createGateway(opts: GatewayOptions): RequestListener {
  const { topology, health, log } = opts;
  const stallMs = opts.stallTimeoutMs ?? DEFAULT_GATEWAY_STALL_TIMEOUT_MS;
  const dashboard = dashboardHandler(); // its JSON API calls are reads, proxied to a region
  /** Parsed region endpoints, by endpoint (parsed on first use). */
  const targets = new Map<string, URL>();
  return (req, res) => {
    const target = parseRequestTarget(req.url);
    if (!target) {
      req.resume();
      return sendError(
        res,
        new OciError('UNSUPPORTED', 'malformed request target', undefined, 400),
      );
    }
    // One parse: from here on every layer, and the region, sees the origin-form target.
    if (target.authority !== undefined) req.headers.host = target.authority;
    req.url = target.path + target.query;
    const path = target.path;
    if (answerObservability(path, req, res)) return;
    if (dashboard(req, res)) return;
    if (path === '/meridian/v1/gateway/regions') {
      return json(res, 200, {
        regions: topology.regions.map((r) => ({ ...r, ...health.state.get(r.name) })),
      });
    }
    const matchAddr =
      topology.opts.matchOn === 'destination' ? req.socket.localAddress : req.socket.remoteAddress;
    const home = topology.homeOf(matchAddr);
    const kind = classify(req.method ?? 'GET', path, req.headers.authorization);
    const blobHead = req.method === 'HEAD' && path.includes('/blobs/');
    void forward(req, res, candidatesFor(kind, home, blobHead), home, kind);
  };

  function readOrder(home: string): GatewayRegion[] {
    const order = topology.readOrder(home, health.latencies());
    const healthy = order.filter((r) => health.isHealthy(r.name));
    return healthy.length > 0 ? healthy : order;
  }

  function candidatesFor(kind: RequestKind, home: string, blobHead: boolean): GatewayRegion[] {
    const primary = topology.primary;
    switch (kind) {
      case 'write':
        return [primary];
      case 'push-read':
        // A pusher's existence check is answered by the primary or, below, for it; its other
        // reads may fall back to the regions.
        return blobHead ? [primary] : [primary, ...readOrder(home).filter((r) => r !== primary)];
      case 'blob-check':
        return health.isHealthy(primary.name)
          ? [primary, ...readOrder(home).filter((r) => r !== primary)]
          : readOrder(home);
      case 'read':
        return readOrder(home);
    }
  }

  async function forward(
    req: IncomingMessage,
    res: ServerResponse,
    candidates: GatewayRegion[],
    home: string,
    kind: RequestKind,
  ): Promise<void> {
    const write = kind === 'write' || kind === 'push-read';
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
    if (res.headersSent || res.destroyed) return;
    if (kind === 'push-read' && req.method === 'HEAD' && req.url?.includes('/blobs/')) {
      // The push's "do you have this blob?" while the primary is down. A HEAD answer has no
      // body, so a 503 here would reach the user as a bare status ("trying to reuse blob …
      // 503"). "No" lets the client go on to start the upload, whose answer says why.
      return sendError(res, new OciError('BLOB_UNKNOWN', PRIMARY_UNAVAILABLE));
    }
    sendError(
      res,
      kind === 'write'
        ? primaryUnavailable()
        : new OciError('UNAVAILABLE', 'no region is available'),
    );
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
      const upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 5000;
      // How long the region may take to start answering once the request is sent: a hung
      // region loses a read after `upstreamTimeoutMs` (it moves on), anything else after the
      // stall timeout.
      const headMs = bodiless && upstreamTimeoutMs > 0 ? upstreamTimeoutMs : stallMs;
      let headTimer: NodeJS.Timeout | undefined;
      /** Set when the client stopped sending its body: not the region's fault. */
      let clientStalled = false;
      // Regions may serve HTTPS (`--tls-cert`); the gateway speaks whatever their endpoint says.
      const up = (target.protocol === 'https:' ? httpsRequest : httpRequest)(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (upRes) => {
          clearTimeout(headTimer);
          const out: Record<string, string | string[]> = {};
          // headersDistinct keeps repeated headers apart: Node joins two WWW-Authenticate
          // challenges (Bearer, Basic) into one line in `headers`, which browsers cannot read.
          for (const [k, v] of Object.entries(upRes.headersDistinct))
            if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v.length === 1 ? v[0]! : v;
          out['x-meridian-region'] = region.name;
          res.writeHead(upRes.statusCode ?? 502, out);
          upRes.pipe(res);
          watchStall(upRes, res, stallMs, () => {
            gatewayStalls.inc({ region: region.name, side: 'region' });
            log.warn(
              { region: region.name, path: req.url, stallMs },
              'gateway: region response stalled; aborting it',
            );
            upRes.destroy();
            res.destroy();
          });
          upRes.on('error', () => res.destroy());
          resolve(true);
        },
      );
      const awaitHead = (): void => {
        clearTimeout(headTimer);
        headTimer = setTimeout(
          () => up.destroy(new Error(`no response within ${headMs} ms`)),
          headMs,
        );
      };
      up.on('error', (err) => {
        clearTimeout(headTimer);
        if (clientStalled) {
          res.destroy();
          return;
        }
        health.reportFailure(region.name, err.message);
        log.warn({ region: region.name, err: err.message }, 'gateway: region unreachable');
        if (!res.headersSent) resolve(false);
        else res.destroy();
      });
      res.on('close', () => {
        clearTimeout(headTimer);
        if (!res.writableFinished) up.destroy();
      });
      if (bodiless) {
        up.end();
        awaitHead();
        return;
      }
      req.pipe(up);
      const stopWatching = watchStall(req, up, stallMs, () => {
        clientStalled = true;
        gatewayStalls.inc({ region: region.name, side: 'client' });
        log.info({ region: region.name, path: req.url, stallMs }, 'gateway: client body stalled');
        up.destroy();
        req.destroy();
      });
      req.once('end', () => {
        stopWatching();
        awaitHead();
      });
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
