/**
 * The conformance suite's push → discover → pull → delete workflow with credentials on: a
 * service identity with AcrPush and AcrDelete on `conformance/*` works through bearer tokens the
 * way clients do (one token per set of scopes), and a cross-repository mount happens only from a
 * repository the token may pull.
 */
import {
  AuthedClient,
  basic,
  fetchToken,
  startAuthNode,
  type AuthNode,
} from '../helpers/auth-node';
import { location } from '../helpers/http';
import { artifact, image, randomBlob } from '../helpers/images';

describe('auth: the OCI workflow with credentials on', () => {
  let node: AuthNode;
  let creds: { user: string; password: string };
  const repo = 'conformance/app';
  const img = image({ layers: 2 });

  const client = async (scopes: string[]) => {
    const t = await fetchToken(node.url, creds, scopes);
    if (t.status !== 200) throw new Error(`token: ${t.status}`);
    return new AuthedClient(node.url, `Bearer ${t.token}`);
  };

  beforeAll(async () => {
    node = await startAuthNode();
    const owner = new AuthedClient(node.url, basic('owner', 'owner-password-for-tests'));
    const res = await owner.post('/meridian/v1/admin/identities', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        kind: 'service',
        name: 'ci',
        roles: [
          { role: 'AcrPush', scope: 'conformance/*' },
          { role: 'AcrDelete', scope: 'conformance/*' },
        ],
      }),
    });
    creds = { user: 'ci', password: res.json<{ password: string }>().password };
    await owner.pushImage('private/base', 'v1', img.blobs, img.manifest);
  });
  afterAll(async () => {
    await node?.close();
  });

  it('pushes monolithic and chunked blobs, a manifest and a referrer', async () => {
    const c = await client([`repository:${repo}:pull,push`]);
    await c.pushImage(repo, 'v1', img.blobs, img.manifest);
    const big = randomBlob(3000);
    const post = await c.startUpload(repo);
    expect(post.status).toBe(202);
    const patch = await c.patch(location(post), {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-1499' },
      body: big.bytes.subarray(0, 1500),
    });
    expect(patch.status).toBe(202);
    const put = await c.put(location(patch), {
      query: { digest: big.digest },
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '1500-2999' },
      body: big.bytes.subarray(1500),
    });
    expect(put.status).toBe(201);
    const sig = artifact({ subject: img.manifest, artifactType: 'application/vnd.example.sig' });
    await c.pushImage(repo, sig.manifest.digest, sig.blobs, sig.manifest);
  });

  it('discovers tags and referrers and pulls every blob', async () => {
    const c = await client([`repository:${repo}:pull`]);
    expect((await c.get(`/v2/${repo}/tags/list`)).json<{ tags: string[] }>().tags).toEqual(['v1']);
    const refs = await c.get(`/v2/${repo}/referrers/${img.manifest.digest}`);
    expect(refs.json<{ manifests: unknown[] }>().manifests).toHaveLength(1);
    const m = await c.get(`/v2/${repo}/manifests/v1`, {
      headers: { Accept: img.manifest.mediaType },
    });
    expect(m.body.equals(img.manifest.bytes)).toBe(true);
    for (const b of img.blobs)
      expect((await c.get(`/v2/${repo}/blobs/${b.digest}`)).body.equals(b.bytes)).toBe(true);
    // A pull token does not push.
    expect((await c.post(`/v2/${repo}/blobs/uploads/`)).status).toBe(401);
  });

  it('mounts only from a repository it may pull', async () => {
    const layer = img.layers[0]!;
    const c = await client([
      'repository:conformance/copy:pull,push',
      `repository:${repo}:pull`,
      'repository:private/base:pull',
    ]);
    const own = await c.post('/v2/conformance/copy/blobs/uploads/', {
      query: { mount: layer.digest, from: repo },
    });
    expect(own.status).toBe(201);
    // private/base has the blob too, but this identity may not read it: a plain session instead.
    const other = await c.post('/v2/conformance/other/blobs/uploads/', {
      query: { mount: img.layers[1]!.digest, from: 'private/base' },
    });
    expect(other.status).toBe(401);
    const c2 = await client([
      'repository:conformance/other:pull,push',
      'repository:private/base:pull',
    ]);
    const refused = await c2.post('/v2/conformance/other/blobs/uploads/', {
      query: { mount: img.layers[1]!.digest, from: 'private/base' },
    });
    expect(refused.status).toBe(202);
  });

  it('deletes manifests and blobs with a delete token, and not with a pull token', async () => {
    const pull = await client([`repository:${repo}:pull`]);
    expect((await pull.delete(`/v2/${repo}/manifests/${img.manifest.digest}`)).status).toBe(401);
    const c = await client([`repository:${repo}:delete`]);
    expect((await c.delete(`/v2/${repo}/manifests/${img.manifest.digest}`)).status).toBe(202);
    expect((await c.delete(`/v2/${repo}/blobs/${img.layers[0]!.digest}`)).status).toBe(202);
    const after = await client([`repository:${repo}:pull`]);
    expect((await after.get(`/v2/${repo}/manifests/${img.manifest.digest}`)).status).toBe(404);
  });
});
