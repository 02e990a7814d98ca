import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express from 'express';
import type { Logger } from 'pino';
import { register } from 'prom-client';
import { dashboardMiddleware } from '@meridian/dashboard';
import { OciError } from '@meridian/oci';
import type { Registry } from './domain/registry';
import { toOciError } from './domain/storage-errors';
import { AuthGate, type AuthOptions } from './http/auth-gate';
import type { V2Context } from './http/context';
import { sendError } from './http/send';
import { matchV2 } from './http/v2-router';
import { adminRouter } from './routes/admin';
import { replicationRouter, type ReplicationStatusProvider } from './routes/replication';
import { tokenRouter } from './routes/token';
import { httpBytesSent, httpDuration, httpRequests } from './metrics';

export interface AppDeps {
  registry: Registry;
  log: Logger;
  /** Region name for logs. Default `local`. */
  region?: string;
  /** Extra readiness checks (e.g. Redis), each throwing when not ready. */
  readinessChecks?: (() => Promise<void>)[];
  /** Cluster replication status (all regions), when this node is part of a cluster. */
  replicationStatus?: ReplicationStatusProvider;
  /**
   * Identity and access: one check before every handler, the token endpoint and the admin API.
   * Default none: every request is allowed (tests; `auth.enabled: false`).
   */
  auth?: AuthOptions;
}

export interface App {
  /** The node's request listener: `/v2` through the lean dispatcher, the rest through express. */
  listener: RequestListener;
  express: express.Express;
}

/**
 * Builds a node from its dependencies; no I/O happens here. The distribution API is served by a
 * fixed route table without express (the hot read paths cannot afford a framework's per-request
 * cost — see docs/adr/0001); health, metrics and admin APIs use express.
 */
export function createApp(deps: AppDeps): App {
  const { registry, log } = deps;
  const region = deps.region ?? 'local';
  const app = express();
  app.disable('x-powered-by');
  const gate = deps.auth ? new AuthGate(deps.auth) : undefined;
  if (gate) app.use(tokenRouter(gate), adminRouter(gate));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await registry.store.ping();
      for (const check of deps.readinessChecks ?? []) await check();
      res.json({ status: 'ready' });
    } catch (err) {
      res
        .status(503)
        .json({ status: 'unavailable', error: err instanceof Error ? err.message : String(err) });
    }
  });
  app.get('/metrics', async (_req, res) => {
    res.type(register.contentType).send(await register.metrics());
  });
  app.use(dashboardMiddleware());
  app.use(replicationRouter(deps.replicationStatus));
  app.use(
    (err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      log.error({ err }, 'admin request failed');
      if (!res.headersSent)
        res.status(err instanceof OciError ? err.status : 500).json({ error: 'internal error' });
    },
  );

  const listener: RequestListener = (req, res) => {
    const started = process.hrtime.bigint();
    const requestId = headerValue(req, 'x-request-id') ?? randomUUID();
    res.setHeader('X-Request-Id', requestId);
    const meta: V2Context['meta'] = { route: 'other' };
    res.once('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = res.statusCode;
      const bytes = Number(res.getHeader('content-length') ?? 0);
      httpRequests.inc({
        route: meta.route,
        method: req.method ?? '',
        status: `${Math.floor(status / 100)}xx`,
      });
      httpDuration.observe({ route: meta.route, method: req.method ?? '' }, ms / 1000);
      if (bytes > 0) httpBytesSent.inc({ route: meta.route }, bytes);
      log.info(
        {
          reqId: requestId,
          region,
          method: req.method,
          path: req.url,
          route: meta.route,
          repository: meta.repository,
          status: res.writableFinished ? status : 'aborted',
          bytes,
          ms: Math.round(ms * 100) / 100,
        },
        'request',
      );
    });
    const url = req.url ?? '/';
    if (url === '/v2' || url.startsWith('/v2/')) {
      handleV2(req, res, meta).catch((err: unknown) =>
        sendError(res, toOciError(err), log, requestId),
      );
      return;
    }
    if (!gate) {
      app(req, res);
      return;
    }
    gate.check(req, res, gate.needForPath(url), false).then(
      () => {
        app(req, res);
      },
      (err: unknown) => {
        req.resume();
        sendError(res, toOciError(err), log, requestId);
      },
    );
  };

  async function handleV2(
    req: IncomingMessage,
    res: ServerResponse,
    meta: V2Context['meta'],
  ): Promise<void> {
    const raw = req.url ?? '/';
    const url = new URL(raw, 'http://registry');
    // Route on the path as sent: URL parsing would resolve `..` and `%2e%2e`, serving
    // `/v2/a/../b/...` as repository `b` instead of refusing the name.
    const q = raw.indexOf('?');
    const pathname = q >= 0 ? raw.slice(0, q) : raw;
    let matched;
    try {
      matched = matchV2(req.method ?? 'GET', pathname);
    } catch (err) {
      req.resume();
      throw err;
    }
    if (gate) await authorizeV2(gate, req, res, matched, url);
    const replica = registry.opts.replica;
    if (matched.write && replica) {
      req.resume();
      throw new OciError(
        'UNSUPPORTED',
        `region ${replica.region} is a read-only replica; push to the primary at ${replica.primary.baseUrl}`,
        { primary: replica.primary.baseUrl },
      );
    }
    meta.route = matched.route;
    if (matched.name) meta.repository = matched.name;
    const ctx: V2Context = {
      req,
      res,
      url,
      name: matched.name,
      param: matched.param,
      registry,
      log,
      meta,
    };
    await matched.handler(ctx);
  }

  return { listener, express: app };
}

/** The auth check for a `/v2` request; a mount from a repository the caller cannot pull is dropped. */
async function authorizeV2(
  gate: AuthGate,
  req: IncomingMessage,
  res: ServerResponse,
  matched: ReturnType<typeof matchV2>,
  url: URL,
): Promise<void> {
  const method = req.method ?? 'GET';
  try {
    await gate.check(req, res, gate.needForV2(matched, method), true);
  } catch (err) {
    req.resume();
    throw err;
  }
  if (matched.route === 'upload' && method === 'POST' && url.searchParams.has('mount')) {
    const from = url.searchParams.get('from');
    if (!from || !gate.mayPull(req, from)) {
      url.searchParams.delete('mount');
      url.searchParams.delete('from');
    }
  }
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s && s.length <= 128 && /^[\w.:-]+$/.test(s) ? s : undefined;
}
