/**
 * Identities × actions × allowed/denied through raw HTTP, with Basic credentials on `/v2` and
 * with bearer tokens from `/oauth2/token`; the challenge, the token endpoint's grants, the admin
 * API's audit log, and that no secret reaches a log line.
 */
import { randomBytes } from 'node:crypto';
import {
  AuthedClient,
  basic,
  fetchToken,
  OWNER_PASSWORD,
  startAuthNode,
  type AuthNode,
} from '../helpers/auth-node';
import { RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';

type Action = 'pull' | 'push' | 'delete' | 'catalog' | 'admin';
const ACTIONS: Action[] = ['pull', 'push', 'delete', 'catalog', 'admin'];

const decode = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as {
    access: { type: string; name: string; actions: string[] }[];
    sub: string;
    aud: string;
  };

describe('auth: identities × actions over raw HTTP', () => {
  let node: AuthNode;
  let owner: AuthedClient;
  const secrets: string[] = [OWNER_PASSWORD];
  const creds: Record<string, { user: string; password: string }> = {};
  const img = image();

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await owner.request(method, `/meridian/v1/admin${path}`, {
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status >= 300)
      throw new Error(`${method} ${path}: ${res.status} ${res.body.toString()}`);
    return res.status === 204 ? {} : res.json<Record<string, unknown>>();
  };

  beforeAll(async () => {
    node = await startAuthNode();
    owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
    creds.owner = { user: 'owner', password: OWNER_PASSWORD };
    for (const repo of ['team-a/app', 'team-b/app'])
      await owner.pushImage(repo, 'v1', img.blobs, img.manifest);

    const users: [string, 'user' | 'service', { role: string; scope: string }[]][] = [
      ['puller', 'user', [{ role: 'AcrPull', scope: '*' }]],
      ['pusher-a', 'service', [{ role: 'AcrPush', scope: 'team-a/*' }]],
      ['deleter', 'user', [{ role: 'AcrDelete', scope: '*' }]],
      ['reader', 'user', [{ role: 'Reader', scope: '*' }]],
      ['nobody', 'user', []],
    ];
    for (const [name, kind, roles] of users) {
      const out = (await admin('POST', '/identities', { kind, name, roles })) as {
        password: string;
      };
      creds[name] = { user: name, password: out.password };
    }
    await admin('POST', '/scope-maps', {
      name: 'team-a-rw',
      rules: [{ repository: 'team-a/*', actions: ['content/read', 'content/write'] }],
    });
    const tok = (await admin('POST', '/tokens', { name: 'tok-a', scopeMap: 'team-a-rw' })) as {
      passwords: { password: string }[];
    };
    creds['tok-a'] = { user: 'tok-a', password: tok.passwords[0]!.password };
    const adminUser = (await admin('POST', '/admin-user/enable')) as {
      newPasswords: { password: string }[];
    };
    creds['admin-user'] = { user: 'meridian', password: adminUser.newPasswords[1]!.password };
    for (const c of Object.values(creds)) secrets.push(c.password);
  });
  afterAll(async () => {
    await node?.close();
  });

  const expected: Record<string, Action[]> = {
    owner: ['pull', 'push', 'delete', 'catalog', 'admin'],
    'admin-user': ['pull', 'push', 'delete', 'catalog'],
    puller: ['pull'],
    'pusher-a': ['pull', 'push'],
    deleter: ['delete'],
    reader: ['catalog'],
    nobody: [],
    'tok-a': ['pull', 'push'],
  };

  /** Performs one action on team-a/app; returns the HTTP status. */
  const attempt = async (c: RegistryClient, action: Action, repo = 'team-a/app') => {
    switch (action) {
      case 'pull':
        return (await c.get(`/v2/${repo}/manifests/v1`)).status;
      case 'push':
        return (await c.post(`/v2/${repo}/blobs/uploads/`)).status;
      case 'delete':
        return (await c.delete(`/v2/${repo}/manifests/sha256:${'0'.repeat(64)}`)).status;
      case 'catalog':
        return (await c.get('/v2/_catalog')).status;
      case 'admin':
        return (await c.get('/meridian/v1/admin/identities')).status;
    }
  };
  const allowed = (status: number) => ![401, 403, 429].includes(status);

  it.each(Object.keys(expected))('%s with Basic credentials on /v2', async (who) => {
    const c = new AuthedClient(node.url, basic(creds[who]!.user, creds[who]!.password));
    expect((await c.get('/v2/')).status).toBe(200);
    const got: Action[] = [];
    for (const a of ACTIONS) {
      const status = await attempt(c, a);
      if (allowed(status)) got.push(a);
      else expect(status).toBe(403);
    }
    expect(got).toEqual(expected[who]);
    if (who === 'pusher-a') expect(await attempt(c, 'pull', 'team-b/app')).toBe(403);
  });

  it.each(Object.keys(expected))('%s with a bearer token from /oauth2/token', async (who) => {
    const t = await fetchToken(node.url, creds[who], [
      'repository:team-a/app:pull,push,delete',
      'registry:catalog:*',
    ]);
    expect(t.status).toBe(200);
    const claims = decode(t.token!);
    expect(claims.sub).toBe(creds[who]!.user);
    // Exactly what was granted: over-asked actions are dropped, not refused.
    const granted = claims.access.flatMap((e) => (e.type === 'registry' ? ['catalog'] : e.actions));
    expect(granted.sort()).toEqual(expected[who]!.filter((a) => a !== 'admin').sort());
    const c = new AuthedClient(node.url, `Bearer ${t.token}`);
    const got: Action[] = [];
    for (const a of ACTIONS) {
      const status = await attempt(c, a);
      if (allowed(status)) got.push(a);
      else expect(status).toBe(403);
    }
    expect(got).toEqual(expected[who]);
  });

  it('challenges an anonymous client with the Docker token flow', async () => {
    const anon = new RegistryClient(node.url);
    const base = await anon.get('/v2/');
    expect(base.status).toBe(401);
    expect(base.header('www-authenticate')).toBe(
      `Bearer realm="${node.url}/oauth2/token",service="meridian"`,
    );
    const pull = await anon.get('/v2/team-a/app/manifests/v1');
    expect(pull.status).toBe(401);
    expect(pull.json<{ errors: { code: string }[] }>().errors[0]!.code).toBe('UNAUTHORIZED');
    expect(pull.header('www-authenticate')).toBe(
      `Bearer realm="${node.url}/oauth2/token",service="meridian",scope="repository:team-a/app:pull"`,
    );
    const push = await anon.post('/v2/team-a/app/blobs/uploads/');
    expect(push.header('www-authenticate')).toContain('scope="repository:team-a/app:pull,push"');
    for (const a of ACTIONS) expect(await attempt(anon, a)).toBe(401);
    // The status APIs want a login too; health and metrics do not by default. The web UI's
    // page holds no data: it is public and signs in with its own form (ADR 0022), so no Basic
    // challenge makes a browser remember credentials it would send with another site's requests.
    expect((await anon.get('/meridian/v1/replication/regions')).status).toBe(401);
    const page = await anon.get('/dashboard/');
    expect(page.status).toBe(200);
    expect(page.header('www-authenticate')).toBeUndefined();
    expect((await anon.get('/healthz')).status).toBe(200);
    expect((await anon.get('/metrics')).status).toBe(200);
    // An anonymous token gets nothing while anonymous pull is off...
    const t = await fetchToken(node.url, undefined, ['repository:team-a/app:pull']);
    expect(decode(t.token!).access).toEqual([]);
    expect((await new AuthedClient(node.url, `Bearer ${t.token}`).get('/v2/')).status).toBe(200);
    // ...and pull only once it is on.
    await admin('PATCH', '/settings', { anonymousPull: true });
    try {
      expect(await attempt(anon, 'pull')).toBe(200);
      expect(await attempt(anon, 'push')).toBe(401);
      const t2 = await fetchToken(node.url, undefined, ['repository:team-a/app:pull,push']);
      expect(decode(t2.token!).access).toEqual([
        { type: 'repository', name: 'team-a/app', actions: ['pull'] },
      ]);
    } finally {
      await admin('PATCH', '/settings', { anonymousPull: false });
    }
  });

  it('asks a client whose token is too narrow to get another (insufficient_scope)', async () => {
    const t = await fetchToken(node.url, creds.owner, ['repository:team-a/app:pull']);
    const c = new AuthedClient(node.url, `Bearer ${t.token}`);
    const res = await c.post('/v2/team-a/app/blobs/uploads/');
    expect(res.status).toBe(401);
    expect(res.header('www-authenticate')).toContain('error="insufficient_scope"');
    const bad = new AuthedClient(node.url, `Bearer ${t.token!.slice(0, -4)}AAAA`);
    const r2 = await bad.get('/v2/team-a/app/manifests/v1');
    expect(r2.status).toBe(401);
    expect(r2.header('www-authenticate')).toContain('error="invalid_token"');
  });

  it('pushes and pulls a whole image with a scoped token, and not outside its scope', async () => {
    const t = await fetchToken(node.url, creds['tok-a'], [
      'repository:team-a/new:pull,push',
      'repository:team-b/new:pull,push',
    ]);
    const c = new AuthedClient(node.url, `Bearer ${t.token}`);
    const other = image();
    await c.pushImage('team-a/new', 'v1', other.blobs, other.manifest);
    expect((await c.get('/v2/team-a/new/manifests/v1')).body.equals(other.manifest.bytes)).toBe(
      true,
    );
    expect((await c.post('/v2/team-b/new/blobs/uploads/')).status).toBe(403);
  });

  it('issues a refresh token for docker login (POST) and refuses it as an access token', async () => {
    const form = new URLSearchParams({
      grant_type: 'password',
      username: 'puller',
      password: creds.puller!.password,
      service: 'meridian',
      client_id: 'docker',
      access_type: 'offline',
      scope: 'repository:team-a/app:pull,push',
    });
    const res = await fetch(`${node.url}/oauth2/token`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; refresh_token: string };
    expect(decode(body.access_token).access).toEqual([
      { type: 'repository', name: 'team-a/app', actions: ['pull'] },
    ]);
    secrets.push(body.refresh_token, body.access_token);
    const refreshed = await fetch(`${node.url}/oauth2/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: body.refresh_token,
        service: 'meridian',
        scope: 'repository:team-b/app:pull',
      }),
    });
    expect(refreshed.status).toBe(200);
    const again = (await refreshed.json()) as { access_token: string };
    expect(decode(again.access_token).access).toEqual([
      { type: 'repository', name: 'team-b/app', actions: ['pull'] },
    ]);
    const misuse = new AuthedClient(node.url, `Bearer ${body.refresh_token}`);
    expect((await misuse.get('/v2/team-a/app/manifests/v1')).status).toBe(401);
    const wrong = await fetch(`${node.url}/oauth2/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', username: 'puller', password: 'x' }),
    });
    expect(wrong.status).toBe(401);
    const otherService = await fetchToken(node.url, creds.puller, [], 'some-other-registry');
    expect(otherService.status).toBe(403);
  });

  it('disabling a token or identity stops its bearer tokens and Basic logins', async () => {
    const { password } = (await admin('POST', '/identities', {
      name: 'temp',
      roles: [{ role: 'AcrPull', scope: '*' }],
    })) as { password: string };
    secrets.push(password);
    const t = await fetchToken(node.url, { user: 'temp', password }, [
      'repository:team-a/app:pull',
    ]);
    const c = new AuthedClient(node.url, `Bearer ${t.token}`);
    expect(await attempt(c, 'pull')).toBe(200);
    await admin('POST', '/identities/temp/disable');
    expect(await attempt(c, 'pull')).toBe(401);
    expect(await attempt(new AuthedClient(node.url, basic('temp', password)), 'pull')).toBe(401);
    await admin('POST', '/identities/temp/enable');
    expect(await attempt(c, 'pull')).toBe(200);
    // A regenerated token password: the old one and tokens bound to it stop working.
    const tokA = await fetchToken(node.url, creds['tok-a'], ['repository:team-a/app:pull']);
    const fresh = (await admin('POST', '/tokens/tok-a/passwords/password1')) as {
      password: string;
    };
    secrets.push(fresh.password);
    expect(await attempt(new AuthedClient(node.url, `Bearer ${tokA.token}`), 'pull')).toBe(401);
    creds['tok-a'] = { user: 'tok-a', password: fresh.password };
    expect(await attempt(new AuthedClient(node.url, basic('tok-a', fresh.password)), 'pull')).toBe(
      200,
    );
  });

  it('audits logins and admin changes (who, what, when, from where) through the admin API', async () => {
    await new AuthedClient(node.url, basic('reader', 'wrong-password')).get('/v2/');
    const res = await owner.get('/meridian/v1/admin/audit', { query: { limit: '1000' } });
    const { events } = res.json<{
      events: {
        actor: string;
        action: string;
        outcome: string;
        address: string;
        at: string;
        target?: string;
      }[];
    }>();
    expect(
      events.find((e) => e.action === 'identity.create' && e.target === 'puller'),
    ).toMatchObject({
      actor: 'owner',
      outcome: 'success',
      address: '127.0.0.1',
    });
    expect(
      events.find((e) => e.action === 'login' && e.actor === 'reader' && e.outcome === 'failure'),
    ).toBeDefined();
    expect(events.find((e) => e.action === 'token.create' && e.target === 'tok-a')).toBeDefined();
    expect(events.find((e) => e.action === 'settings.update')).toBeDefined();
    // Non-owners cannot read it.
    expect(
      (
        await new AuthedClient(node.url, basic('reader', creds.reader!.password)).get(
          '/meridian/v1/admin/audit',
        )
      ).status,
    ).toBe(403);
  });

  it('writes no password or token to any log line', async () => {
    await node.auth.audit.flush();
    expect(node.logLines.length).toBeGreaterThan(50);
    const all = node.logLines.join('\n');
    expect(all).toContain('"audit"');
    for (const s of secrets) expect(all).not.toContain(s);
    expect(all).not.toMatch(/Basic [A-Za-z0-9+/=]{8,}/);
    expect(all).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
  });
});

describe('auth: brute force', () => {
  let node: AuthNode;
  beforeAll(async () => {
    node = await startAuthNode({
      throttle: { maxFailuresPerIdentity: 5, maxFailuresPerAddress: 20 },
    });
  });
  afterAll(async () => {
    await node?.close();
  });

  it('throttles repeated failed logins with 429 TOOMANYREQUESTS and Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const pw = randomBytes(6).toString('hex');
      const res =
        i % 2 === 0
          ? await new AuthedClient(node.url, basic('owner', pw)).get('/v2/')
          : await fetch(`${node.url}/oauth2/token?service=meridian`, {
              headers: { Authorization: basic('owner', pw) },
            });
      statuses.push(res.status);
      if (res.status === 429) {
        const retry = 'header' in res ? res.header('retry-after') : res.headers.get('retry-after');
        expect(Number(retry)).toBeGreaterThan(0);
      }
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual(Array<number>(7).fill(429));
    // The right password is refused too while throttled; other identities are not.
    expect(
      (await new AuthedClient(node.url, basic('owner', OWNER_PASSWORD)).get('/v2/')).status,
    ).toBe(429);
    const events = await node.auth.audit.query({ outcome: 'throttled' });
    expect(events.length).toBe(8);
  });
});
