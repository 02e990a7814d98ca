/**
 * Authorization is decided on the very match that dispatches: for every route of the node's
 * route table, every method and every identity kind, the gate demands what the route declares
 * — over hostile variants of the path (case, `//`, `/./`, `%2F`, `%2e%2e`, `%61`, a trailing
 * slash, `;param`, absolute-form, a Host header that disagrees with the absolute-form
 * authority). A variant either reaches the same route with the same decision, or no route at
 * all (a 404 before any handler runs); it never reaches a handler the identity may not use.
 */
import { request as httpRequest } from 'node:http';
import pino from 'pino';
import { createApp, V2_ROUTES, type AppRoute } from '@meridian/registry';
import { image } from '../helpers/images';
import {
  AuthedClient,
  basic,
  fetchToken,
  OWNER_PASSWORD,
  startAuthNode,
  type AuthNode,
} from '../helpers/auth-node';

interface Raw {
  status: number;
  body: string;
  code?: string;
  message?: string;
}

/** Sends one request with the request target exactly as given (origin- or absolute-form). */
function raw(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path: target, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let code: string | undefined;
          let message: string | undefined;
          try {
            const j = JSON.parse(text) as { errors?: { code: string; message: string }[] };
            code = j.errors?.[0]?.code;
            message = j.errors?.[0]?.message;
          } catch {
            // not JSON: stays undefined, and the assertions below say so
          }
          resolve({ status: res.statusCode ?? 0, body: text, code, message });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) {
      req.setHeader('Content-Type', 'application/json');
      req.end(body);
    } else req.end();
  });
}

/** What the router itself answers for a target no route owns (no handler has run). */
const ROUTER_REFUSALS = [
  /^unknown API endpoint$/,
  /^malformed request target$/,
  /^malformed percent-encoding in the path$/,
  /is not supported on this endpoint$/,
  /^invalid repository name/,
];

function refusedBeforeHandler(r: Raw, method = 'GET'): boolean {
  // A HEAD answer has no body to tell who refused it; GET on the same target is checked too.
  if (method === 'HEAD') return [400, 401, 403, 404, 405].includes(r.status);
  if (r.status === 401 || r.status === 403) return r.code === 'UNAUTHORIZED' || r.code === 'DENIED';
  if (r.status === 400 || r.status === 404 || r.status === 405)
    return ROUTER_REFUSALS.some((re) => re.test(r.message ?? ''));
  return false;
}

/** Hostile spellings of an origin-form path that must not reach another route. */
function variants(path: string): [string, string][] {
  const segs = path.split('/');
  const first = segs[1]!;
  const last = segs[segs.length - 1]!;
  const withSeg = (i: number, v: string) => segs.map((s, j) => (j === i ? v : s)).join('/');
  const out: [string, string][] = [
    ['upper-case first segment', withSeg(1, first.toUpperCase())],
    ['upper-case last segment', withSeg(segs.length - 1, last.toUpperCase())],
    ['double slash', path.replace(/^\/([^/]+)\//, '/$1//')],
    ['leading double slash', `/${path}`],
    ['dot segment', path.replace(/^\/([^/]+)\//, '/$1/./')],
    ['dot-dot segment', path.replace(/^\/([^/]+)\//, '/$1/x/%2e%2e/')],
    ['literal dot-dot', path.replace(/^\/([^/]+)\//, '/$1/x/../')],
    ['encoded slash', path.replace(/^\/([^/]+)\//, '/$1%2F')],
    ['encoded letter', withSeg(1, `%${first.charCodeAt(0).toString(16)}${first.slice(1)}`)],
    ['trailing slash', `${path}/`],
    ['matrix param', withSeg(1, `${first};x=1`)],
  ];
  return out.filter(([, v]) => v !== path);
}

/** A concrete path for a route template. */
function concrete(template: string, name: string): string {
  return template
    .replace(/:repository\+/g, 'team-b/app')
    .replace(/:(tag|reference)\b/g, 'v1')
    .replace(/:name\b/g, name)
    .replace(/:slot\b/g, 'password1')
    .replace(/\/\*$/, '/app.js');
}

/** What the test's identities hold (roles at registry scope), by the permission names of needs. */
const HOLDS: Record<string, string[]> = {
  puller: ['pull'],
  pusher: ['pull', 'push'],
  reader: ['metadata_read'],
};

/** Whether a non-Owner identity passes a route's declared need. */
function mayUse(who: string, need: AppRoute['need']): boolean {
  const signedIn = who !== 'no credentials' && who !== 'anonymous';
  if (need.kind === 'identity') return signedIn;
  if (need.kind === 'catalog') return who === 'reader';
  if (need.kind === 'repository') return need.actions.some((a) => HOLDS[who]?.includes(a));
  return false;
}

describe('route table × identity × path variants', () => {
  let node: AuthNode;
  let port: number;
  let routes: readonly AppRoute[];
  /** identity → the Authorization headers it is tried with (Basic, and a bearer token). */
  const identities: Record<string, { basic?: string; bearer?: string; isOwner?: boolean }> = {};

  beforeAll(async () => {
    node = await startAuthNode();
    port = Number(new URL(node.url).port);
    routes = createApp({
      registry: node.registry,
      log: pino({ level: 'silent' }),
      auth: { service: node.auth },
    }).routes.routes;
    const owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
    const img = image();
    await owner.pushImage('team-a/app', 'v1', img.blobs, img.manifest);
    const scopes = [
      'repository:team-a/app:pull,push,delete',
      'registry:catalog:*',
      'repository:team-b/app:pull,push,delete,metadata_read',
    ];
    const add = async (name: string, password: string, isOwner = false) => {
      const t = await fetchToken(node.url, { user: name, password }, scopes);
      expect(t.status).toBe(200);
      identities[name] = { basic: basic(name, password), bearer: `Bearer ${t.token!}`, isOwner };
    };
    const users: [string, { role: string; scope: string }[]][] = [
      ['puller', [{ role: 'AcrPull', scope: '*' }]],
      ['pusher', [{ role: 'AcrPush', scope: '*' }]],
      ['reader', [{ role: 'Reader', scope: '*' }]],
      ['nobody', []],
    ];
    for (const [name, roles] of users) {
      const res = await owner.request('POST', '/meridian/v1/admin/identities', {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ kind: 'user', name, roles }),
      });
      expect(res.status).toBe(201);
      await add(name, res.json<{ password: string }>().password);
    }
    await add('owner', OWNER_PASSWORD, true);
    const anon = await fetchToken(node.url, undefined, scopes);
    identities.anonymous = anon.token ? { bearer: `Bearer ${anon.token}` } : {};
    identities['no credentials'] = {};
  });

  afterAll(async () => {
    await node?.close();
  });

  test('the table declares Owner for every admin route and nothing looser', () => {
    const admin = routes.filter((r) => r.path.startsWith('/meridian/v1/admin'));
    expect(admin.length).toBeGreaterThan(20);
    for (const r of admin)
      expect({ path: r.path, need: r.need.kind }).toEqual({ path: r.path, need: 'admin' });
    // Public: the token endpoint, health, metrics, and the web UI's static page (no data in it;
    // it signs in with a token, ADR 0022).
    const open = ['/oauth2/token', '/healthz', '/readyz', '/metrics', '/dashboard', '/dashboard/*'];
    for (const r of routes.filter((x) => x.need.kind === 'public')) expect(open).toContain(r.path);
  });

  test('admin and status routes: a caller without the permission is refused on every variant', async () => {
    const problems: string[] = [];
    for (const route of routes) {
      if (route.need.kind === 'public') continue;
      const path = concrete(route.path, 'puller');
      for (const [who, id] of Object.entries(identities)) {
        const allowed = id.isOwner || mayUse(who, route.need);
        const mutating = route.method !== 'GET';
        // An identity that may use a mutating route is not sent there: the test must not change
        // the identities it runs as. Everything that must be refused is sent, mutating or not.
        if (allowed && mutating) continue;
        const body =
          route.body === 'json'
            ? '{"name":"intruder","roles":[{"role":"Owner","scope":"*"}]}'
            : undefined;
        const auths = [id.basic, id.bearer].filter((a): a is string => a !== undefined);
        if (auths.length === 0) auths.push('');
        for (const authz of auths) {
          const headers: Record<string, string> = authz ? { Authorization: authz } : {};
          const exact = await raw(port, route.method, path, headers, body);
          const absolute = await raw(
            port,
            route.method,
            `http://127.0.0.1:${port}${path}`,
            headers,
            body,
          );
          const lying = await raw(
            port,
            route.method,
            `http://127.0.0.1:${port}${path}`,
            { ...headers, Host: 'evil.example' },
            body,
          );
          for (const [form, r] of [
            ['exact', exact],
            ['absolute-form', absolute],
            ['absolute-form, other Host', lying],
          ] as const) {
            // Allowed: the handler ran (whatever it made of the request), the gate did not refuse.
            const ok = allowed
              ? r.status !== 401 && r.status !== 403 && r.status < 500
              : r.status === 401 || r.status === 403;
            if (!ok)
              problems.push(
                `${who} ${route.method} ${path} (${form}): ${r.status} ${r.body.slice(0, 120)}`,
              );
          }
          if (allowed) {
            // The absolute-form is the same request as the origin-form.
            if (absolute.status !== exact.status)
              problems.push(
                `${who} ${route.method} ${path}: origin ${exact.status}, absolute ${absolute.status}`,
              );
            continue;
          }
          for (const [kind, v] of variants(path)) {
            const r = await raw(port, route.method, v, headers, body);
            if (!refusedBeforeHandler(r))
              problems.push(
                `${who} ${route.method} ${v} (${kind}): ${r.status} ${r.body.slice(0, 120)}`,
              );
          }
        }
      }
    }
    expect(problems).toEqual([]);
    // And nothing was created on the way.
    const list = await new AuthedClient(node.url, basic('owner', OWNER_PASSWORD)).get(
      '/meridian/v1/admin/identities',
    );
    expect(list.body.toString()).not.toContain('intruder');
  });

  test('an Owner reaches an admin route by its exact path and its absolute-form, and by no variant', async () => {
    const owner = identities.owner!;
    for (const authz of [owner.basic!, owner.bearer!]) {
      const exact = await raw(port, 'GET', '/meridian/v1/admin/identities', {
        Authorization: authz,
      });
      expect(exact.status).toBe(200);
      expect(exact.body).toContain('puller');
      const absolute = await raw(
        port,
        'GET',
        `http://127.0.0.1:${port}/meridian/v1/admin/identities`,
        {
          Authorization: authz,
        },
      );
      expect(absolute.status).toBe(200);
      for (const [kind, v] of variants('/meridian/v1/admin/identities')) {
        const r = await raw(port, 'GET', v, { Authorization: authz });
        expect({ kind, status: r.status, code: r.code }).toEqual({
          kind,
          status: 404,
          code: 'NAME_UNKNOWN',
        });
      }
    }
  });

  test('/v2: every route × method is decided on the repository it dispatches to', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const paths: Record<string, string> = {
      base: '/v2/',
      catalog: '/v2/_catalog',
      manifest: '/v2/team-b/app/manifests/v1',
      uploads: '/v2/team-b/app/blobs/uploads/',
      upload: '/v2/team-b/app/blobs/uploads/6f1c0a52-5a55-4c1e-9d67-3c0b1e6f0a11',
      blob: `/v2/team-b/app/blobs/${digest}`,
      tags: '/v2/team-b/app/tags/list',
      referrers: `/v2/team-b/app/referrers/${digest}`,
    };
    expect(Object.keys(paths).sort()).toEqual(V2_ROUTES.map((r) => r.name).sort());
    const problems: string[] = [];
    // `nobody` has no permission on team-b/app; `puller` may only pull.
    for (const who of ['nobody', 'puller', 'no credentials']) {
      const id = identities[who]!;
      const auths = [id.basic, id.bearer].filter((a): a is string => a !== undefined);
      if (auths.length === 0) auths.push('');
      for (const route of V2_ROUTES) {
        const path = paths[route.name]!;
        for (const [method, entry] of Object.entries(route.methods)) {
          if (!entry) continue;
          const need = entry.need;
          const allowed =
            who !== 'no credentials' &&
            (need.kind === 'token' ||
              (who === 'puller' && need.kind === 'repository' && need.actions.includes('pull')));
          if (allowed) continue;
          for (const authz of auths) {
            const headers: Record<string, string> = authz ? { Authorization: authz } : {};
            const body =
              method === 'PUT' || method === 'PATCH' || method === 'POST' ? '{}' : undefined;
            for (const [kind, target] of [
              ['exact', path],
              ['absolute-form', `http://127.0.0.1:${port}${path}`],
              ...variants(path),
              ['encoded name', path.replace('team-b/app', 'team-b%2Fapp')],
              ['dot-dot name', path.replace('team-b/app', 'team-a/../team-b/app')],
              ['upper-case name', path.replace('team-b/app', 'TEAM-B/app')],
            ] as [string, string][]) {
              if (route.name === 'base' || route.name === 'catalog') {
                if (
                  kind === 'encoded name' ||
                  kind === 'dot-dot name' ||
                  kind === 'upper-case name'
                )
                  continue;
              }
              const r = await raw(port, method, target, headers, body);
              if (!refusedBeforeHandler(r, method))
                problems.push(
                  `${who} ${method} ${target} (${kind}): ${r.status} ${r.body.slice(0, 120)}`,
                );
            }
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  test('absolute-form requests are served like origin-form ones', async () => {
    const owner = identities.owner!.basic!;
    const base = await raw(port, 'GET', `http://127.0.0.1:${port}/v2/`, { Authorization: owner });
    expect(base.status).toBe(200);
    const tags = await raw(port, 'GET', `http://127.0.0.1:${port}/v2/team-a/app/tags/list?n=10`, {
      Authorization: owner,
    });
    expect(tags.status).toBe(200);
    expect(JSON.parse(tags.body)).toEqual({ name: 'team-a/app', tags: ['v1'] });
    const health = await raw(port, 'GET', `http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    // Anything that is neither origin- nor absolute-form is a clean 400 in the OCI shape.
    const star = await raw(port, 'OPTIONS', '*');
    expect({ status: star.status, code: star.code }).toEqual({ status: 400, code: 'UNSUPPORTED' });
  });

  test('the challenge names the absolute-form authority, not a disagreeing Host header', async () => {
    const res = await new Promise<{ status: number; challenge: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'GET',
          path: `http://registry.example:5000/v2/team-a/app/tags/list`,
          headers: { Host: 'evil.example' },
          agent: false,
        },
        (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, challenge: String(r.headers['www-authenticate']) });
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(401);
    expect(res.challenge).toContain('realm="http://registry.example:5000/oauth2/token"');
  });
});

describe('proxy headers', () => {
  let node: AuthNode;
  let port: number;
  beforeAll(async () => {
    node = await startAuthNode();
    port = Number(new URL(node.url).port);
  });
  afterAll(async () => {
    await node?.close();
  });

  const challenge = async (proto: string): Promise<string> => {
    const res = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/v2/team-a/app/tags/list',
          headers: { 'X-Forwarded-Proto': proto, Host: 'reg.example' },
          agent: false,
        },
        (r) => {
          r.resume();
          resolve(String(r.headers['www-authenticate']));
        },
      );
      req.on('error', reject);
      req.end();
    });
    return res;
  };

  test('X-Forwarded-Proto from a trusted peer is believed only as http or https', async () => {
    expect(await challenge('https')).toContain('realm="https://reg.example/oauth2/token"');
    expect(await challenge('HTTPS, http')).toContain('realm="https://reg.example/oauth2/token"');
    for (const hostile of ['ftp', 'https"', 'javascript', 'http\\"x', '']) {
      const c = await challenge(hostile);
      expect(c).toContain('realm="http://reg.example/oauth2/token"');
      expect(c.match(/"/g)?.length ?? 0).toBe(6); // realm, service, scope: nothing injected
    }
  });
});
