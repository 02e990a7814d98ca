/**
 * `/acr/v1` (ADR 0020): ACR's data-plane shapes, paging, locks through PATCH, deletes, and the
 * gate deciding on the very repository name the handler reads — over a node with auth on.
 */
import { request as httpRequest } from 'node:http';
import { artifact, image, imageIndex, type Image, type Manifest } from '../helpers/images';
import {
  AuthedClient,
  basic,
  fetchToken,
  OWNER_PASSWORD,
  startAuthNode,
  type AuthNode,
} from '../helpers/auth-node';
import { expectOciError } from '../helpers/http';

interface Tag {
  name: string;
  digest: string;
  createdTime: string;
  lastUpdateTime: string;
  changeableAttributes: Record<string, boolean>;
}
interface ManifestAttrs {
  digest: string;
  imageSize: number;
  architecture?: string;
  os?: string;
  mediaType: string;
  configMediaType?: string;
  tags: string[];
  references?: { digest: string; architecture?: string; os?: string }[];
  referrers: number;
  artifactType?: string;
  subject?: string;
  changeableAttributes: Record<string, boolean>;
}

function raw(port: number, method: string, target: string, authz?: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path: target,
        headers: authz ? { Authorization: authz } : {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('/acr/v1', () => {
  let node: AuthNode;
  let owner: AuthedClient;
  let port: number;
  let amd: Image;
  let arm: Image;
  let index: Manifest;
  let sig: ReturnType<typeof artifact>;
  const passwords: Record<string, string> = {};

  const json = <T>(res: { status: number; json<X>(): X }, status = 200): T => {
    expect(res.status).toBe(status);
    return res.json<T>();
  };

  beforeAll(async () => {
    node = await startAuthNode();
    port = Number(new URL(node.url).port);
    owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
    amd = image();
    arm = image();
    await owner.pushImage('team-a/app', amd.manifest.digest, amd.blobs, amd.manifest);
    await owner.pushImage('team-a/app', arm.manifest.digest, arm.blobs, arm.manifest);
    index = imageIndex({ manifests: [amd.manifest, arm.manifest] });
    expect((await owner.putManifest('team-a/app', 'v1', index)).status).toBe(201);
    expect((await owner.putManifest('team-a/app', 'v2', index)).status).toBe(201);
    expect((await owner.putManifest('team-a/app', 'amd', amd.manifest)).status).toBe(201);
    sig = artifact({
      subject: index,
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    });
    await owner.pushImage('team-a/app', sig.manifest.digest, sig.blobs, sig.manifest);
    const other = image();
    await owner.pushImage('team-b/app', 'latest', other.blobs, other.manifest);
    for (const [name, role] of [
      ['reader', 'Reader'],
      ['puller', 'AcrPull'],
      ['nobody', undefined],
    ] as const) {
      const res = await owner.request('POST', '/meridian/v1/admin/identities', {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ kind: 'user', name, roles: role ? [{ role, scope: '*' }] : [] }),
      });
      expect(res.status).toBe(201);
      passwords[name] = res.json<{ password: string }>().password;
    }
  });

  afterAll(async () => {
    await node?.close();
  });

  test('catalog, repository, tags and manifests in ACR shapes', async () => {
    const cat = await owner.get('/acr/v1/_catalog');
    expect(json(cat)).toEqual({ repositories: ['team-a/app', 'team-b/app'] });
    expect(cat.header('x-total-count')).toBe('2');
    const page1 = await owner.get('/acr/v1/_catalog?n=1');
    expect(json(page1)).toEqual({ repositories: ['team-a/app'] });
    expect(page1.header('link')).toBe(
      '</acr/v1/_catalog?last=team-a%2Fapp&n=1&orderby=>; rel="next"',
    );
    expect(json(await owner.get('/acr/v1/_catalog?n=1&last=team-a%2Fapp'))).toEqual({
      repositories: ['team-b/app'],
    });

    const repo = json<Record<string, unknown>>(await owner.get('/acr/v1/team-a/app'));
    expect(repo).toMatchObject({
      registry: node.host,
      imageName: 'team-a/app',
      manifestCount: 4,
      tagCount: 3,
      changeableAttributes: {
        deleteEnabled: true,
        writeEnabled: true,
        readEnabled: true,
        listEnabled: true,
        teleportEnabled: false,
      },
    });
    expect(Date.parse(repo.createdTime as string)).toBeLessThanOrEqual(
      Date.parse(repo.lastUpdateTime as string),
    );

    const tags = json<{ registry: string; imageName: string; tags: Tag[] }>(
      await owner.get('/acr/v1/team-a/app/_tags'),
    );
    expect(tags.imageName).toBe('team-a/app');
    expect(tags.tags.map((t) => [t.name, t.digest])).toEqual([
      ['amd', amd.manifest.digest],
      ['v1', index.digest],
      ['v2', index.digest],
    ]);
    expect(tags.tags[0]!.changeableAttributes.writeEnabled).toBe(true);

    const one = json<{ tag: Tag }>(await owner.get('/acr/v1/team-a/app/_tags/v1'));
    expect(one.tag).toMatchObject({ name: 'v1', digest: index.digest, signed: false });

    const list = json<{ manifests: ManifestAttrs[] }>(
      await owner.get('/acr/v1/team-a/app/_manifests'),
    );
    const byDigest = new Map(list.manifests.map((m) => [m.digest, m]));
    expect(byDigest.size).toBe(4);
    expect(byDigest.get(amd.manifest.digest)).toMatchObject({
      architecture: 'amd64',
      os: 'linux',
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      configMediaType: 'application/vnd.oci.image.config.v1+json',
      tags: ['amd'],
      imageSize: amd.manifest.size + amd.blobs.reduce((a, b) => a + b.size, 0),
      referrers: 0,
    });
    const idx = byDigest.get(index.digest)!;
    expect(idx.tags).toEqual(['v1', 'v2']);
    expect(idx.references).toEqual([
      { digest: amd.manifest.digest, architecture: 'amd64', os: 'linux' },
      { digest: arm.manifest.digest, architecture: 'arm64', os: 'linux' },
    ]);
    expect(idx.referrers).toBe(1);
    expect(byDigest.get(sig.manifest.digest)).toMatchObject({
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      subject: index.digest,
      tags: [],
    });

    const m = json<{ manifest: ManifestAttrs }>(
      await owner.get(`/acr/v1/team-a/app/_manifests/${index.digest}`),
    );
    expect(m.manifest).toEqual(idx);
  });

  test('n/last paging and the time order with its cursor', async () => {
    const seen: string[] = [];
    let path: string | undefined = '/acr/v1/team-a/app/_manifests?n=1&orderby=timeasc';
    while (path) {
      const res = await owner.get(path);
      const body = json<{ manifests: ManifestAttrs[] }>(res);
      expect(res.header('x-total-count')).toBe('4');
      seen.push(...body.manifests.map((x) => x.digest));
      const link = res.header('link');
      path = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined;
      expect(seen.length).toBeLessThanOrEqual(4);
    }
    // Every manifest once, oldest update first.
    expect(new Set(seen).size).toBe(4);
    const times = await Promise.all(
      seen.map(async (d) =>
        Date.parse(
          json<{ manifest: ManifestAttrs & { lastUpdateTime: string } }>(
            await owner.get(`/acr/v1/team-a/app/_manifests/${d}`),
          ).manifest.lastUpdateTime,
        ),
      ),
    );
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    const desc = json<{ tags: Tag[] }>(
      await owner.get('/acr/v1/team-a/app/_tags?orderby=timedesc'),
    );
    const descTimes = desc.tags.map((t) => Date.parse(t.lastUpdateTime));
    expect([...descTimes].sort((a, b) => b - a)).toEqual(descTimes);
    const lex = json<{ tags: Tag[] }>(await owner.get('/acr/v1/team-a/app/_tags?n=2&last=amd'));
    expect(lex.tags.map((t) => t.name)).toEqual(['v1', 'v2']);
  });

  test('bad input gets the error body and changes nothing', async () => {
    expectOciError(await owner.get('/acr/v1/team-a/app/_tags?n=0'), 400, 'UNSUPPORTED');
    expectOciError(await owner.get('/acr/v1/team-a/app/_tags?orderby=name'), 400, 'UNSUPPORTED');
    expectOciError(await owner.get('/acr/v1/nope/app'), 404, 'NAME_UNKNOWN');
    expectOciError(await owner.get('/acr/v1/team-a/app/_tags/nope'), 404, 'MANIFEST_UNKNOWN');
    expectOciError(
      await owner.get(`/acr/v1/team-a/app/_manifests/sha256:${'0'.repeat(64)}`),
      404,
      'MANIFEST_UNKNOWN',
    );
    const patch = await owner.patch('/acr/v1/team-a/app/_tags/v1', {
      headers: { 'Content-Type': 'application/json' },
      body: '{"writeEnabled":false,"owner":"me"}',
    });
    expectOciError(patch, 400, 'UNSUPPORTED');
    const notBool = await owner.patch('/acr/v1/team-a/app', {
      headers: { 'Content-Type': 'application/json' },
      body: '{"deleteEnabled":"no"}',
    });
    expectOciError(notBool, 400, 'UNSUPPORTED');
    const t = json<{ tag: Tag }>(await owner.get('/acr/v1/team-a/app/_tags/v1'));
    expect(t.tag.changeableAttributes.writeEnabled).toBe(true);
    expect(json<{ deleteEnabled: boolean }>(await owner.get('/acr/v1/team-a/app'))).toMatchObject({
      changeableAttributes: { deleteEnabled: true },
    });
  });

  test('authorization: reads need pull or metadata_read, PATCH metadata_write, DELETE delete', async () => {
    const as = (who: string) => new AuthedClient(node.url, basic(who, passwords[who]!));
    expect((await as('reader').get('/acr/v1/team-a/app/_tags')).status).toBe(200);
    expect((await as('puller').get('/acr/v1/team-a/app/_manifests')).status).toBe(200);
    expectOciError(await as('nobody').get('/acr/v1/team-a/app/_tags'), 403, 'DENIED');
    expectOciError(await as('puller').get('/acr/v1/_catalog'), 403, 'DENIED');
    const body = {
      headers: { 'Content-Type': 'application/json' },
      body: '{"writeEnabled":false}',
    };
    expectOciError(await as('reader').patch('/acr/v1/team-a/app/_tags/v1', body), 403, 'DENIED');
    expectOciError(await as('reader').delete('/acr/v1/team-a/app/_tags/v1'), 403, 'DENIED');
    const anon = await new AuthedClient(node.url, undefined).get('/acr/v1/team-a/app/_tags');
    expectOciError(anon, 401, 'UNAUTHORIZED');
    expect(anon.header('www-authenticate')).toContain(
      'scope="repository:team-a/app:metadata_read"',
    );
    // Bearer: a token for metadata_read reads, and cannot write.
    const t = await fetchToken(node.url, { user: 'owner', password: OWNER_PASSWORD }, [
      'repository:team-a/app:metadata_read',
    ]);
    const bearer = new AuthedClient(node.url, `Bearer ${t.token!}`);
    expect((await bearer.get('/acr/v1/team-a/app/_tags')).status).toBe(200);
    expectOciError(await bearer.patch('/acr/v1/team-a/app', body), 401, 'UNAUTHORIZED');
    expectOciError(await bearer.get('/acr/v1/team-b/app/_tags'), 401, 'UNAUTHORIZED');
    const w = await fetchToken(node.url, { user: 'owner', password: OWNER_PASSWORD }, [
      'repository:team-b/app:metadata_write,metadata_read',
    ]);
    expect(w.body.scope).toBe('repository:team-b/app:metadata_write,metadata_read');
  });

  test('hostile spellings of the name: the same repository or none, decided before any handler', async () => {
    const nobody = basic('nobody', passwords.nobody!);
    const reader = basic('reader', passwords.reader!);
    // The Azure SDKs send the name as one encoded segment: the same repository, the same need.
    const enc = await raw(port, 'GET', '/acr/v1/team-a%2Fapp/_tags', reader);
    expect(enc.status).toBe(200);
    expect(JSON.parse(enc.body)).toMatchObject({ imageName: 'team-a/app' });
    expect((await raw(port, 'GET', '/acr/v1/team-a%2Fapp/_tags', nobody)).status).toBe(403);
    for (const target of [
      '/acr/v1/team-x/../team-a/app/_tags',
      '/acr/v1/team-x/%2e%2e/team-a/app/_tags',
      '/acr/v1/Team-A/app/_tags',
      '/acr/v1/team-a/app/_tags/%2e%2e',
      '/acr/v1/team-a//app/_tags',
      '/acr/v1/team-a/app/_TAGS',
    ]) {
      const r = await raw(port, 'GET', target, reader);
      expect({ target, status: r.status, invalid: r.body.includes('NAME_INVALID') }).toEqual({
        target,
        status: 400,
        invalid: true,
      });
    }
    for (const target of ['/ACR/v1/team-a/app/_tags', '/acr/V1/team-a/app/_tags']) {
      const r = await raw(port, 'GET', target, reader);
      expect({ target, status: r.status }).toEqual({ target, status: 404 });
    }
    // Absolute-form is the same request.
    const abs = await raw(port, 'GET', `http://127.0.0.1:${port}/acr/v1/team-a/app/_tags`, nobody);
    expect(abs.status).toBe(403);
  });

  test('PATCH locks through the lock store; DELETE of a tag, a manifest and a repository', async () => {
    const json_ = { 'Content-Type': 'application/json' };
    const locked = json<{ tag: Tag }>(
      await owner.patch('/acr/v1/team-a/app/_tags/v1', {
        headers: json_,
        body: '{"writeEnabled":false,"deleteEnabled":false}',
      }),
    );
    expect(locked.tag.changeableAttributes).toEqual({
      deleteEnabled: false,
      writeEnabled: false,
      readEnabled: true,
      listEnabled: true,
    });
    // The lock is the registry's lock: the tag can no longer be moved or deleted.
    expectOciError(await owner.putManifest('team-a/app', 'v1', amd.manifest), 403, 'DENIED');
    expectOciError(await owner.delete('/acr/v1/team-a/app/_tags/v1'), 403, 'DENIED');
    // Nor can the repository be deleted as a whole: nothing of it is.
    expectOciError(await owner.delete('/acr/v1/team-a/app'), 403, 'DENIED');
    expect(json<{ tags: Tag[] }>(await owner.get('/acr/v1/team-a/app/_tags')).tags).toHaveLength(3);
    await owner.patch('/acr/v1/team-a/app/_tags/v1', {
      headers: json_,
      body: '{"writeEnabled":true,"deleteEnabled":true}',
    });

    const hidden = json<{ manifest: ManifestAttrs }>(
      await owner.patch(`/acr/v1/team-a/app/_manifests/${amd.manifest.digest}`, {
        headers: json_,
        body: '{"listEnabled":false}',
      }),
    );
    expect(hidden.manifest.changeableAttributes.listEnabled).toBe(false);
    const tagNames = json<{ tags: Tag[] }>(await owner.get('/acr/v1/team-a/app/_tags')).tags.map(
      (t) => t.name,
    );
    expect(tagNames).toEqual(['v1', 'v2']);

    expect((await owner.delete('/acr/v1/team-a/app/_tags/v2')).status).toBe(202);
    expectOciError(await owner.get('/v2/team-a/app/manifests/v2'), 404, 'MANIFEST_UNKNOWN');
    expect(
      (await owner.delete(`/acr/v1/team-a/app/_manifests/${sig.manifest.digest}`)).status,
    ).toBe(202);
    expectOciError(
      await owner.get(`/v2/team-a/app/manifests/${sig.manifest.digest}`),
      404,
      'MANIFEST_UNKNOWN',
    );

    const del = await owner.delete('/acr/v1/team-b/app');
    expect(del.status).toBe(202);
    expect(del.json<{ tagsDeleted: string[]; manifestsDeleted: string[] }>()).toMatchObject({
      tagsDeleted: ['latest'],
    });
    expectOciError(await owner.get('/acr/v1/team-b/app'), 404, 'NAME_UNKNOWN');
    expect(json(await owner.get('/acr/v1/_catalog'))).toEqual({ repositories: ['team-a/app'] });
  });
});
