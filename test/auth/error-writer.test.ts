/**
 * One error writer: every client mistake on the token endpoint, the admin API and the status
 * APIs is a 4xx in the OCI error shape with the parser's status kept (413, 415, 400) — never a
 * 500 — and a request body (a password in it) never reaches the log.
 */
import {
  AuthedClient,
  basic,
  OWNER_PASSWORD,
  startAuthNode,
  type AuthNode,
} from '../helpers/auth-node';
import type { HttpResponse } from '../helpers/http';
import { image } from '../helpers/images';

function expectOci(res: HttpResponse, status: number, code: string): void {
  const body = res.json<{ errors?: { code?: unknown; message?: unknown }[] }>();
  const first = body.errors?.[0];
  expect({ status: res.status, n: body.errors?.length, code: first?.code }).toEqual({
    status,
    n: 1,
    code,
  });
  expect(typeof first?.message).toBe('string');
}

describe('one error writer for every endpoint', () => {
  let node: AuthNode;
  let owner: AuthedClient;
  const SECRET = 'Sup3r-secret-password-in-a-body';

  beforeAll(async () => {
    node = await startAuthNode({ softDeleteMs: 3600_000 });
    owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
  });
  afterAll(async () => {
    await node?.close();
  });

  const adminPost = (path: string, body: string | Buffer, type = 'application/json') =>
    owner.request('POST', `/meridian/v1/admin${path}`, {
      headers: { 'Content-Type': type },
      body,
    });

  test('admin API: malformed JSON is a 400, and the body (a password) is never logged', async () => {
    const res = await adminPost('/identities', `{"name":"x","password":"${SECRET}",`);
    expectOci(res, 400, 'UNSUPPORTED');
    expect(res.body.toString()).not.toContain(SECRET);
    expect(node.logLines.join('\n')).not.toContain(SECRET);
    expect(node.logLines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50)).toEqual(
      [],
    );
  });

  test('a body of another media type than the route reads is a 415, never read as no body', async () => {
    // A soft-deleted manifest in each of two repositories.
    for (const repo of ['bin/keep', 'bin/target']) {
      const img = image();
      await owner.pushImage(repo, 'v1', img.blobs, img.manifest);
      expect((await owner.delete(`/v2/${repo}/manifests/${img.manifest.digest}`)).status).toBe(202);
    }
    const binOf = async (repo: string) =>
      (await owner.get('/meridian/v1/admin/deleted', { query: { repository: repo } })).json<{
        manifests: unknown[];
      }>().manifests.length;
    expect([await binOf('bin/keep'), await binOf('bin/target')]).toEqual([1, 1]);
    // A purge aimed at one repository, its JSON sent as a form, as text or with no type: read
    // as no body it would purge every repository's bin.
    const purge = JSON.stringify({ repository: 'bin/target' });
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', undefined]) {
      const res = await owner.request('POST', '/meridian/v1/admin/deleted/purge', {
        headers: type ? { 'Content-Type': type } : {},
        body: purge,
      });
      expectOci(res, 415, 'UNSUPPORTED');
    }
    expect([await binOf('bin/keep'), await binOf('bin/target')]).toEqual([1, 1]);
    // The token endpoint reads forms: a JSON body is a 415 too, not a missing grant_type.
    const token = await owner.request('POST', '/oauth2/token', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: 'owner', password: 'x' }),
    });
    expectOci(token, 415, 'UNSUPPORTED');
    // What each route reads still works, with its parameters.
    const ok = await adminPost('/deleted/purge', purge, 'application/json; charset=utf-8');
    expect([ok.status, await binOf('bin/keep'), await binOf('bin/target')]).toEqual([200, 1, 0]);
  });

  test('admin API: null, array and scalar bodies are a 400', async () => {
    for (const body of ['null', '[]', '"x"', '42'])
      expectOci(await adminPost('/identities', body), 400, 'UNSUPPORTED');
  });

  test('admin API: an oversized body is a 413', async () => {
    const big = JSON.stringify({ name: 'x', description: 'a'.repeat(70 * 1024) });
    expectOci(await adminPost('/scope-maps', big), 413, 'SIZE_INVALID');
  });

  test('admin API: an unsupported charset or encoding is a 415', async () => {
    expectOci(
      await adminPost('/identities', '{}', 'application/json; charset=iso-8859-1'),
      415,
      'UNSUPPORTED',
    );
    const res = await owner.request('POST', '/meridian/v1/admin/identities', {
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'x-unknown' },
      body: '{}',
    });
    expectOci(res, 415, 'UNSUPPORTED');
  });

  test('admin API: malformed percent-encoding in a route parameter is a 400', async () => {
    expectOci(await owner.get('/meridian/v1/admin/identities/%E0%A4%A'), 400, 'NAME_INVALID');
    expectOci(await owner.get('/meridian/v1/admin/identities/%zz'), 400, 'NAME_INVALID');
  });

  test('admin API: a refusal of the service is the OCI shape with its status', async () => {
    expectOci(await owner.get('/meridian/v1/admin/identities/nobody-here'), 404, 'NAME_UNKNOWN');
    expectOci(await adminPost('/identities', '{"name":"owner"}'), 409, 'DENIED');
  });

  test('token endpoint: oversized, utf-16, too many fields and unknown grants are 4xx', async () => {
    const post = (body: string | Buffer, type = 'application/x-www-form-urlencoded') =>
      owner.request('POST', '/oauth2/token', { headers: { 'Content-Type': type }, body });
    expectOci(
      await post(`grant_type=password&username=a&password=${'x'.repeat(17 * 1024)}`),
      413,
      'SIZE_INVALID',
    );
    expectOci(
      await post(
        Buffer.from('grant_type=password', 'utf16le'),
        'application/x-www-form-urlencoded; charset=utf-16',
      ),
      415,
      'UNSUPPORTED',
    );
    const fields = Array.from({ length: 1001 }, (_, i) => `f${i}=1`).join('&');
    expectOci(await post(fields), 413, 'SIZE_INVALID');
    const grant = await post('grant_type=client_credentials');
    expect(grant.status).toBe(400);
    expect(grant.json()).toMatchObject({
      errors: [{ code: 'UNSUPPORTED' }],
      error: 'unsupported_grant_type',
    });
    expect(node.logLines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50)).toEqual(
      [],
    );
  });

  test('unknown paths and methods are OCI errors on every process route', async () => {
    expectOci(await owner.get('/nowhere'), 404, 'NAME_UNKNOWN');
    expectOci(await owner.request('DELETE', '/healthz'), 405, 'UNSUPPORTED');
    expect((await owner.request('DELETE', '/healthz')).header('allow')).toBe('GET, HEAD');
    expectOci(
      await owner.get('/meridian/v1/replication/status?repository=..'),
      400,
      'NAME_INVALID',
    );
  });
});
