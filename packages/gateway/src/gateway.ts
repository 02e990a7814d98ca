import {
  request as httpRequest,
  type IncomingMessage,
  type RequestListener,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Counter, register } from 'prom-client';
import { answerObservability } from '@meridian/observability';
import { OciError, parseRequestTarget } from '@meridian/oci';
import type { Logger } from 'pino';
import { PRIMARY_UNAVAILABLE, primaryUnavailable, sendError } from './errors';
import { nodeLabel, type HealthChecker } from './health';
import { classify, type RequestKind } from './routing';
import { watchStall } from './stall';
import { nodesOf, type GatewayRegion, type Topology } from './topology';

export { isWrite } from './routing';

export const gatewayRequests = new Counter({
  name: 'meridian_gateway_requests_total',
  help: 'Requests the gateway sent to each region, by kind (read, write)',
  labelNames: ['region', 'kind'] as const,
  registers: [register],
});

export const gatewayNodeRequests = new Counter({
  name: 'meridian_gateway_node_requests_total',
  help: 'Requests the gateway sent to each node of a region (a region with several nodes shares them out)',
  labelNames: ['region', 'node'] as const,
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
  /** Parsed node URLs, by URL (parsed on first use). */
  const targets = new Map<string, URL>();
  /** Per region, how many requests it was given: the next one starts at the next node. */
  const turns = new Map<string, number>();
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

  /**
   * The nodes to try for one request to `region`: its healthy nodes (every node when none is),
   * starting one further along at each request, so a region's nodes share its requests.
   */
  function nodesFor(region: GatewayRegion): string[] {
    const healthy = health.healthyNodes(region.name);
    const nodes = healthy.length > 0 ? healthy : nodesOf(region);
    if (nodes.length === 1) return nodes;
    const turn = turns.get(region.name) ?? 0;
    turns.set(region.name, (turn + 1) % 1_000_000);
    const start = turn % nodes.length;
    return [...nodes.slice(start), ...nodes.slice(0, start)];
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
    // A request with a body moves on to another node of the region only while its body is unread
    // (the node refused the connection).
    // A primary whose every node hung on a request is not sent writes until it answers again:
    // each would wait out a timeout (30 s for a request with a body) to get the same refusal.
    const primary = topology.primary;
    const tried =
      write && health.isHung(primary.name) ? candidates.filter((r) => r !== primary) : candidates;
    regions: for (const region of bodiless ? tried : tried.slice(0, 1)) {
      const delay = opts.latencyMs?.(home, region.name) ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      for (const node of nodesFor(region)) {
        const outcome = await proxyOnce(req, res, region, node, bodiless);
        if (outcome === 'served') {
          gatewayRequests.inc({ region: region.name, kind: write ? 'write' : 'read' });
          gatewayNodeRequests.inc({ region: region.name, node: nodeLabel(node) });
          if (!write && region.name !== home) gatewayFailovers.inc({ home, region: region.name });
          return;
        }
        if (outcome === 'spent') break regions;
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

  /**
   * Proxies to one node of a region. Resolves `served` once the node answered, `retry` when it
   * could not be reached and nothing was sent or read yet, `spent` when it could not be reached
   * after the client's request body started flowing to it (the request cannot be replayed).
   */
  function proxyOnce(
    req: IncomingMessage,
    res: ServerResponse,
    region: GatewayRegion,
    node: string,
    bodiless: boolean,
  ): Promise<'served' | 'retry' | 'spent'> {
    return new Promise((resolve) => {
      let target = targets.get(node);
      if (!target) targets.set(node, (target = new URL(node)));
      /** Whether the client's body started flowing to this node. */
      let piped = false;
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
      /** Set when the node accepted the request and did not start answering in time. */
      let hung = false;
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
          resolve('served');
        },
      );
      const awaitHead = (): void => {
        clearTimeout(headTimer);
        headTimer = setTimeout(() => {
          hung = true;
          up.destroy(new Error(`no response within ${headMs} ms`));
        }, headMs);
      };
      up.on('error', (err) => {
        clearTimeout(headTimer);
        if (clientStalled) {
          res.destroy();
          return;
        }
        health.reportFailure(region.name, err.message, node, hung);
        log.warn({ region: region.name, node, err: err.message }, 'gateway: node unreachable');
        if (!res.headersSent) resolve(piped ? 'spent' : 'retry');
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
      // The body flows once the node accepted the connection: a node that refuses it (killed)
      // leaves the body unread for the region's next node.
      const pipeBody = (): void => {
        piped = true;
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
      };
      up.once('socket', (socket) => {
        if (socket.connecting) socket.once('connect', pipeBody);
        else pipeBody();
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
