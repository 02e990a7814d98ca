import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express from 'express';
import type { Logger } from 'pino';
import { dashboardHandler } from '@meridian/dashboard';
import { HEALTH_BODY, metricsBody } from '@meridian/observability';
import { OciError, parseRequestTarget } from '@meridian/oci';
import type { Actor, RequestInfo } from './domain/events';
import type { Registry } from './domain/registry';
import { toOciError } from './domain/storage-errors';
import { AuthGate, type AuthOptions } from './http/auth-gate';
import type { V2Context } from './http/context';
import { clientError } from './http/client-errors';
import { RouteTable, type AppRoute, type MatchedAppRoute } from './http/route-table';
import { sendError } from './http/send';
import { pinoRequestLog, type RequestLog } from './http/request-log';
import { hasBody } from './http/body';
import { queryParam } from './http/query';
import { matchV2 } from './http/v2-router';
import { adminRoutes } from './routes/admin';
import { replicationRoutes, type ReplicationStatusProvider } from './routes/replication';
import { tokenRoutes } from './routes/token';
import { webhookRoutes, type WebhookAdmin } from './routes/webhooks';
import { gcRoutes, type GcAdmin } from './routes/gc';
import { lockRoutes } from './routes/locks';
import { usageRoutes } from './routes/usage';
import type { UsageReader } from './domain/usage-reader';
import { purgeRoutes, type PurgeAdmin } from './routes/purge';
import { importRoutes, type ImportAdmin } from './routes/imports';
import { credentialSetRoutes, type CredentialSetAdmin } from './routes/credential-sets';
import { cacheRuleRoutes, type CacheRuleAdmin } from './routes/cache-rules';
import { recycleBinRoutes } from './routes/recycle-bin';
import { retentionRoutes, type RetentionAdmin } from './routes/retention';
import { acrRoutes } from './routes/acr';
import { RepositoryMetadata } from './domain/repository-metadata';
import { httpBytesSent, httpDuration, httpRequests } from './metrics';
import { readinessCheck } from './readiness';

export interface AppDeps {
  registry: Registry;
  log: Logger;
  /** Region name for logs. Default `local`. */
  region?: string;
  /** Extra readiness checks (e.g. Redis), each throwing when not ready. */
  readinessChecks?: (() => Promise<void>)[];
  /** Cluster replication status (all regions), when this node is part of a cluster. */
  replicationStatus?: ReplicationStatusProvider;
  /** The webhook admin API (`/meridian/v1/admin/webhooks`), when webhooks are configured. */
  webhooks?: WebhookAdmin;
  /** Every region's pull counts (`/meridian/v1/usage`), when the node can read them. */
  usage?: UsageReader;
  /** The garbage-collection admin API (`/meridian/v1/admin/gc`), on a primary node. */
  gc?: GcAdmin;
  /** The purge admin API (`/meridian/v1/admin/purge`), on a primary node. */
  purge?: PurgeAdmin;
  /** The retention admin API (`/meridian/v1/admin/retention`), on a primary node. */
  retention?: RetentionAdmin;
  /** Imports from other registries (`/meridian/v1/admin/import`), on a primary node. */
  imports?: ImportAdmin;
  /** Credential sets for upstream registries (`/meridian/v1/admin/credential-sets`). */
  credentialSets?: CredentialSetAdmin;
  /** Pull-through cache rules (`/meridian/v1/admin/cache-rules`). */
  cacheRules?: CacheRuleAdmin;
  /**
   * Identity and access: one check before every handler, the token endpoint and the admin API.
   * Default none: every request is allowed (tests; `auth.enabled: false`).
   */
  auth?: AuthOptions;
  /**
   * Where each request's line goes. Default `log.info(line, 'request')`; `meridian serve`
   * passes the same line built without pino's generic serializer (`jsonLineRequestLog`).
   */
  requestLog?: RequestLog;
}

export interface App {
  /** The node's request listener: `/v2` through the lean dispatcher, the rest through express. */
  listener: RequestListener;
  /** Every non-`/v2` route of the node: the table that authorizes and dispatches them. */
  routes: RouteTable;
}

/** Bodies the admin API and the token endpoint accept (JSON and forms), at most. */
const JSON_LIMIT = '64kb';
const FORM_LIMIT = '16kb';
/** The one media type each body kind is read as (parameters such as `charset` aside). */
const BODY_TYPES = { json: 'application/json', form: 'application/x-www-form-urlencoded' } as const;

const MATCHED = Symbol('meridian.route');
type RoutedRequest = IncomingMessage & { [MATCHED]?: MatchedAppRoute };

/**
 * Builds a node from its dependencies; no I/O happens here. Every request target is parsed
 * once (origin- or absolute-form); the path as sent picks one entry of one route table, and that
 * entry both says what the request needs and handles it — so authorization can never be decided
 * on a different path than the one dispatched. The distribution API is served by its own fixed
 * table without express (the hot read paths cannot afford a framework's per-request cost — see
 * docs/adr/0001); the other routes run their handler inside express for its request/response
 * helpers and body parsers, but express does no routing. One error writer answers for both.
 */
export function createApp(deps: AppDeps): App {
  const { registry, log } = deps;
  const region = deps.region ?? 'local';
  // The request log carries the region once, as a binding (serve's logger has it as its base).
  const requestLog =
    deps.requestLog ??
    pinoRequestLog(log.bindings().region === undefined ? log.child({ region }) : log);
  const gate = deps.auth ? new AuthGate(deps.auth) : undefined;
  // Purge and retention remove on behalf of the caller: their events carry the Owner as actor.
  const onBehalf = <T>(req: IncomingMessage, res: ServerResponse, fn: () => Promise<T>) =>
    registry.events.withRequest(requestInfo(req, res, gate), fn);
  const routes = new RouteTable([
    ...(gate ? [...tokenRoutes(gate), ...adminRoutes(gate)] : []),
    ...healthRoutes(deps, gate),
    ...replicationRoutes(deps.replicationStatus),
    ...webhookRoutes(deps.webhooks),
    ...gcRoutes(deps.gc),
    ...lockRoutes(registry, (req, res) => requestInfo(req, res, gate)),
    ...usageRoutes(deps.usage),
    ...purgeRoutes(deps.purge, onBehalf),
    ...retentionRoutes(
      deps.retention,
      onBehalf,
      (req, res) => requestInfo(req, res, gate).actor.name,
    ),
    ...importRoutes(deps.imports, (req, res) => requestInfo(req, res, gate)),
    ...credentialSetRoutes(deps.credentialSets),
    ...cacheRuleRoutes(deps.cacheRules),
    ...recycleBinRoutes(registry),
    ...acrRoutes({
      registry,
      metadata: new RepositoryMetadata(registry.store, registry.locks, registry.tags, deps.usage),
      replication: deps.replicationStatus,
      requestInfo: (req, res) => requestInfo(req, res, gate),
    }),
    ...dashboardRoutes(),
  ]);

  const app = express();
  app.disable('x-powered-by');
  const parsers = {
    json: express.json({ limit: JSON_LIMIT }),
    form: express.urlencoded({ extended: false, limit: FORM_LIMIT, parameterLimit: 100 }),
  };
  app.use((req, res, next) => {
    const matched = (req as RoutedRequest)[MATCHED];
    if (!matched) {
      next(new OciError('NAME_UNKNOWN', 'unknown API endpoint', undefined, 404));
      return;
    }
    const run = (err?: unknown): void => {
      if (err) {
        next(err);
        return;
      }
      Promise.resolve(matched.route.handle(req, res, matched.params)).catch(next);
    };
    const body = matched.route.body;
    if (!body) return run();
    // A body the route's parser does not read would reach the handler as no body at all: a
    // `{"dryRun": true}` sent as a form became a real GC, a purge's filters a purge of everything.
    if (hasBody(req) && !req.is(BODY_TYPES[body]))
      return run(
        new OciError('UNSUPPORTED', `the request body must be ${BODY_TYPES[body]}`, undefined, 415),
      );
    parsers[body](req, res, run);
  });
  app.use(
    (err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      sendError(res, clientError(err), log, String(res.getHeader('X-Request-Id') ?? ''));
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
      requestLog({
        reqId: requestId,
        method: req.method,
        path: logPath(req.url),
        route: meta.route,
        repository: meta.repository,
        status: res.writableFinished ? status : 'aborted',
        bytes,
        ms: Math.round(ms * 100) / 100,
      });
    });
    const fail = (err: unknown): void => {
      req.resume();
      sendError(res, toOciError(err), log, requestId);
    };
    const target = parseRequestTarget(req.url);
    if (!target) {
      fail(new OciError('UNSUPPORTED', 'malformed request target', undefined, 400));
      return;
    }
    // RFC 9112 §3.2.2: an absolute-form target's authority replaces the Host header. From here
    // on every layer sees the same origin-form target.
    if (target.authority !== undefined) req.headers.host = target.authority;
    req.url = target.path + target.query;
    if (target.path === '/v2' || target.path.startsWith('/v2/')) {
      handleV2(req, res, meta, target.path).catch(fail);
      return;
    }
    let matched: MatchedAppRoute;
    try {
      matched = routes.match(req.method ?? 'GET', target.path);
    } catch (err) {
      fail(err);
      return;
    }
    meta.route = routeLabel(matched.route.path);
    (req as RoutedRequest)[MATCHED] = matched;
    if (!gate) {
      app(req, res);
      return;
    }
    gate.check(req, res, matched.need, false).then(() => {
      app(req, res);
    }, fail);
  };

  async function handleV2(
    req: IncomingMessage,
    res: ServerResponse,
    meta: V2Context['meta'],
    pathname: string,
  ): Promise<void> {
    // Route on the path as sent: URL parsing would resolve `..` and `%2e%2e`, serving
    // `/v2/a/../b/...` as repository `b` instead of refusing the name.
    let matched;
    try {
      matched = matchV2(req.method ?? 'GET', pathname);
    } catch (err) {
      req.resume();
      throw err;
    }
    // The query is parsed only by the handlers that read it (mount, digest, n/last,
    // artifactType): a manifest or blob GET never pays for a URL object.
    let url: URL | undefined;
    const parsedUrl = (): URL => (url ??= new URL(req.url ?? '/', 'http://registry'));
    if (gate) await authorizeV2(gate, req, res, matched, parsedUrl);
    const replica = registry.opts.replica;
    if (matched.write && replica) {
      req.resume();
      throw new OciError(
        'UNSUPPORTED',
        `region ${replica.region} is a read-only replica; push to the primary at ${replica.primary.baseUrl}`,
        { primary: replica.primary.baseUrl, allow: matched.readMethods },
      );
    }
    meta.route = matched.route;
    if (matched.name) meta.repository = matched.name;
    const ctx: V2Context = {
      req,
      res,
      get url() {
        return parsedUrl();
      },
      name: matched.name,
      param: matched.param,
      registry,
      request: requestInfo(req, res, gate),
      log,
      meta,
    };
    await registry.events.withRequest(ctx.request, () => matched.handler(ctx));
  }

  return { listener, routes };
}

/** The actor and request id domain events carry; `anonymous` when auth is off or absent. */
function requestInfo(
  req: IncomingMessage,
  res: ServerResponse,
  gate: AuthGate | undefined,
): RequestInfo {
  const principal = gate?.principalOf(req);
  const actor: Actor = {
    kind: principal?.kind ?? 'anonymous',
    name: principal?.name ?? '',
    address: gate ? gate.clientAddress(req) : (req.socket.remoteAddress ?? '-'),
  };
  if (principal?.kind === 'token') actor.token = principal.name;
  const ua = req.headers['user-agent'];
  if (ua) actor.userAgent = ua;
  return { actor, requestId: String(res.getHeader('X-Request-Id') ?? '') };
}

/** `/healthz`, `/readyz` and `/metrics`: public unless the auth options protect them. */
function healthRoutes(deps: AppDeps, gate: AuthGate | undefined): AppRoute[] {
  const health = gate?.opts.protectHealth
    ? { kind: 'identity' as const }
    : { kind: 'public' as const };
  const metrics = gate?.opts.protectMetrics
    ? { kind: 'identity' as const }
    : { kind: 'public' as const };
  return [
    {
      method: 'GET',
      path: '/healthz',
      need: health,
      handle: (_req, res) => {
        res.type('application/json').send(HEALTH_BODY);
      },
    },
    {
      method: 'GET',
      path: '/readyz',
      need: health,
      handle: async (_req, res) => {
        try {
          // Every check at once, each bounded (readinessCheck): a hung dependency is a quick
          // 503 that names it, never a /readyz that does not answer.
          const storage = readinessCheck('storage', () => deps.registry.store.ping());
          await Promise.all([storage, ...(deps.readinessChecks ?? [])].map((check) => check()));
          res.json({ status: 'ready' });
        } catch (err) {
          res.status(503).json({
            status: 'unavailable',
            error: err instanceof Error ? err.message : String(err),
          });
        }
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      need: metrics,
      handle: async (_req, res) => {
        const { contentType, body } = await metricsBody();
        res.type(contentType).send(body);
      },
    },
  ];
}

/**
 * The web UI's page and assets: public, as they hold no data — the page signs in with a token
 * (its sign-in form) and every API it reads checks that token. A login wall here would be the
 * browser's own Basic prompt, whose remembered credentials a browser sends with any site's
 * requests (ADR 0022).
 */
function dashboardRoutes(): AppRoute[] {
  const serve = dashboardHandler();
  const handle: AppRoute['handle'] = (req, res) => {
    serve(req, res);
  };
  return [
    { method: 'GET', path: '/dashboard', need: { kind: 'public' }, handle },
    { method: 'GET', path: '/dashboard/*', need: { kind: 'public' }, handle },
  ];
}

/** A route template as a bounded metrics label (`/meridian/v1/admin/identities/:name`). */
function routeLabel(path: string): string {
  if (path.startsWith('/meridian/v1/admin')) return 'admin';
  if (path.startsWith('/meridian/v1/')) return 'status';
  if (path.startsWith('/dashboard')) return 'dashboard';
  if (path.startsWith('/acr/v1')) return 'acr';
  return path.slice(1).replace(/\W+/g, '_');
}

/**
 * The target for the request log: `/v2` with its query (digests, pagination), anything else
 * without (no credential sent in a query string of the token endpoint ever reaches the log).
 */
function logPath(url: string | undefined): string | undefined {
  if (url === undefined || url === '/v2' || url.startsWith('/v2/') || url.startsWith('/v2?'))
    return url;
  const q = url.indexOf('?');
  return q >= 0 ? url.slice(0, q) : url;
}

/** The auth check for a `/v2` request; a mount from a repository the caller cannot pull is dropped. */
async function authorizeV2(
  gate: AuthGate,
  req: IncomingMessage,
  res: ServerResponse,
  matched: ReturnType<typeof matchV2>,
  parsedUrl: () => URL,
): Promise<void> {
  try {
    await gate.check(req, res, matched.need, true);
  } catch (err) {
    req.resume();
    throw err;
  }
  if (matched.route !== 'uploads') return;
  const url = parsedUrl();
  if (queryParam(url, 'mount') !== undefined) {
    const from = queryParam(url, 'from');
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
