/**
 * `meridian import` and `POST /meridian/v1/admin/import` (issue 15) against real registries on
 * loopback: CNCF Distribution with htpasswd Basic auth (no referrers API: the tag schema), and a
 * second Meridian node with auth on (the Docker token flow, the referrers API). The target is a
 * two-region cluster, so what was imported is pulled back from the replica too.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { OWNER_PASSWORD, startAuthNode, basic, type AuthNode } from '../helpers/auth-node';
import { meridian, CLI } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import type { ImageBlob, Manifest } from '../helpers/images';
import { waitFor } from '../helpers/wait';
import {
  Pusher,
  pushSignedIndex,
  signedIndex,
  startDistribution,
  type Distribution,
  type SignedIndex,
} from './upstreams';

const OWNER = 'import-owner-pw';
const INDEX = 'application/vnd.oci.image.index.v1+json';

describe('import from other registries', () => {
  let c: TestCluster;
  let dist: Distribution;
  let upstream: AuthNode;
  const fromDist = signedIndex();
  const fromMeridian = signedIndex();

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
    [c, dist, upstream] = await Promise.all([
      startCluster({
        regions: ['eastus', 'westeurope'],
        auth: {},
        ownerPassword: OWNER,
        upstream: { credentialKey: randomBytes(32).toString('base64') },
      }),
      startDistribution(),
      startAuthNode(),
    ]);
    await pushSignedIndex(
      new Pusher(dist.url, basic(dist.user, dist.password)),
      'lib/app',
      'v1',
      fromDist,
      true,
    );
    await pushSignedIndex(
      new Pusher(upstream.url, basic('owner', OWNER_PASSWORD)),
      'team/base',
      'v2',
      fromMeridian,
      false,
    );
  });
  afterAll(async () => {
    await c?.close();
    await dist?.close();
    await upstream?.close();
  });

  const owner = basic('owner', OWNER);
  const get = (base: string, path: string, accept = '*/*') =>
    fetch(`${base}${path}`, { headers: { Authorization: owner, Accept: accept } });
  const bytesOf = async (base: string, path: string, accept?: string) => {
    const r = await get(base, path, accept);
    return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
  };
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${c.primary.url}/meridian/v1/admin/import${path}`, {
      method,
      headers: { Authorization: owner, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const finished = (id: string) =>
    waitFor(async () => {
      const r = await api('GET', `/${id}`);
      return r.body.status === 'succeeded' || r.body.status === 'failed' ? r.body : undefined;
    }, `import ${id}`);

  /** Every manifest, blob and the referrers list, byte for byte, from `base`. */
  async function expectServed(base: string, repo: string, tag: string, img: SignedIndex) {
    const m = (x: Manifest) => bytesOf(base, `/v2/${repo}/manifests/${x.digest}`, x.mediaType);
    expect(await bytesOf(base, `/v2/${repo}/manifests/${tag}`, INDEX)).toEqual({
      status: 200,
      bytes: img.index.bytes,
    });
    for (const x of [...img.platforms, img.signature])
      expect(await m(x)).toEqual({ status: 200, bytes: x.bytes });
    const blobs = new Map<string, ImageBlob>(img.blobs.map((b) => [b.digest, b]));
    for (const b of blobs.values())
      expect(await bytesOf(base, `/v2/${repo}/blobs/${b.digest}`)).toEqual({
        status: 200,
        bytes: b.bytes,
      });
    const refs = await get(base, `/v2/${repo}/referrers/${img.index.digest}`);
    const list = (await refs.json()) as { manifests: { digest: string }[] };
    expect(list.manifests.map((d) => d.digest)).toEqual([img.signature.digest]);
  }

  it('meridian import copies an index, its platforms and its signature from Distribution (Basic auth), and every region serves it', async () => {
    const r = await meridian(
      [
        'import',
        '--source',
        `${dist.host}/lib/app:v1`,
        '--image',
        'hub/app:v1',
        '--username',
        dist.user,
        '--password',
        dist.password,
        '--url',
        c.primary.url,
      ],
      { MERIDIAN_PASSWORD: OWNER },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({
      digest: fromDist.index.digest,
      targets: ['hub/app:v1'],
      manifests: 4,
      referrers: 1,
      blobsSkipped: 0,
      dryRun: false,
    });
    expect(r.stdout).not.toContain(dist.password);
    await expectServed(c.primary.url, 'hub/app', 'v1', fromDist);

    await c.startWorkers();
    const replica = c.replicas[0]!.url;
    await waitFor(
      async () =>
        (await bytesOf(replica, `/v2/hub/app/manifests/v1`, INDEX)).bytes.equals(
          fromDist.index.bytes,
        ),
      'the replica to serve hub/app:v1',
    );
    await expectServed(replica, 'hub/app', 'v1', fromDist);
  });

  it('the admin API imports by digest from a Meridian node through the token flow and the referrers API; blobs already here are not fetched again', async () => {
    const start = await api('POST', '', {
      source: `${upstream.host}/team/base@${fromMeridian.index.digest}`,
      images: ['mirror/base:stable', 'mirror/base-copy:stable'],
      username: 'owner',
      password: OWNER_PASSWORD,
    });
    expect(start.status).toBe(202);
    expect(start.body).toMatchObject({
      status: expect.stringMatching(/^(queued|running)$/) as unknown,
      targets: ['mirror/base:stable', 'mirror/base-copy:stable'],
    });
    const job = await finished(start.body.id as string);
    expect(job.error).toBeUndefined();
    expect(job.status).toBe('succeeded');
    const distinct = new Set(fromMeridian.blobs.map((b) => b.digest));
    // Stored by the first test's import (the empty config of both signatures): linked, not fetched.
    const stored = fromDist.blobs.filter((b) => distinct.has(b.digest)).length;
    expect(stored).toBe(1);
    // The second target links every blob the first one fetched.
    expect(job.result).toMatchObject({
      digest: fromMeridian.index.digest,
      referrers: 1,
      blobs: distinct.size,
      blobsCopied: distinct.size - stored,
      blobsSkipped: distinct.size + stored,
    });
    await expectServed(c.primary.url, 'mirror/base', 'stable', fromMeridian);
    await expectServed(c.primary.url, 'mirror/base-copy', 'stable', fromMeridian);
    // Listed by the API, newest first.
    const list = await api('GET', '');
    expect((list.body as unknown as { id: string }[])[0]!.id).toBe(start.body.id);
    // One importFinished event per target, on behalf of the Owner who asked (the audit log is
    // one of the event's subscribers).
    const audited = await waitFor(async () => {
      const r = await fetch(
        `${c.primary.url}/meridian/v1/admin/audit?action=event.importFinished&limit=50`,
        { headers: { Authorization: owner } },
      );
      const { events } = (await r.json()) as {
        events: { actor: string; target: string; detail: Record<string, unknown> }[];
      };
      const mine = events.filter((e) => e.target.startsWith('mirror/'));
      return mine.length === 2 ? mine : undefined;
    }, 'the importFinished events in the audit log');
    expect(audited.map((e) => e.target).sort()).toEqual([
      `mirror/base-copy@${fromMeridian.index.digest}`,
      `mirror/base@${fromMeridian.index.digest}`,
    ]);
    for (const e of audited) {
      expect(e.actor).toBe('owner');
      expect(e.detail).toMatchObject({ tag: 'stable', mediaType: INDEX });
    }
  });

  it('wrong credentials fail with an error that names them, and store nothing', async () => {
    const r = await meridian(
      [
        'import',
        '--source',
        `${dist.host}/lib/app:v1`,
        '--image',
        'denied/app:v1',
        '--username',
        dist.user,
        '--password',
        'not-the-password',
        '--url',
        c.primary.url,
      ],
      { MERIDIAN_PASSWORD: OWNER },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${dist.host} refused the credentials given for ${dist.user}`);
    expect(r.stderr).not.toContain('not-the-password');
    expect((await get(c.primary.url, '/v2/denied/app/manifests/v1', INDEX)).status).toBe(404);
    const catalog = (await (await get(c.primary.url, '/v2/_catalog')).json()) as {
      repositories: string[];
    };
    expect(catalog.repositories).not.toContain('denied/app');
  });

  it('refuses to move a tag that points at other content unless forced; a dry run writes nothing', async () => {
    const source = `${upstream.host}/team/base:v2`;
    const creds = { username: 'owner', password: OWNER_PASSWORD };
    const refused = await finished(
      (await api('POST', '', { source, images: ['hub/app:v1'], ...creds })).body.id as string,
    );
    expect(refused.status).toBe('failed');
    expect(refused.error).toContain(`hub/app:v1 already points at ${fromDist.index.digest}`);
    expect((await bytesOf(c.primary.url, '/v2/hub/app/manifests/v1', INDEX)).bytes).toEqual(
      fromDist.index.bytes,
    );

    const dry = await finished(
      (await api('POST', '', { source, images: ['dry/app:v2'], dryRun: true, ...creds })).body
        .id as string,
    );
    expect(dry).toMatchObject({ status: 'succeeded', result: { dryRun: true, blobsCopied: 0 } });
    expect((await get(c.primary.url, '/v2/dry/app/manifests/v2', INDEX)).status).toBe(404);

    const forced = await finished(
      (await api('POST', '', { source, images: ['hub/app:v1'], force: true, ...creds })).body
        .id as string,
    );
    expect(forced.status).toBe('succeeded');
    expect((await bytesOf(c.primary.url, '/v2/hub/app/manifests/v1', INDEX)).bytes).toEqual(
      fromMeridian.index.bytes,
    );
  });

  it('meridian credential-set keeps a login the API never shows; an import through it works, and a wrong one is named', async () => {
    const cli = (...args: string[]) =>
      meridian([...args, '--url', c.primary.url], { MERIDIAN_PASSWORD: OWNER });
    const made = await cli(
      'credential-set',
      'create',
      'dist',
      '--login-server',
      dist.host,
      '--username',
      dist.user,
      '--password',
      dist.password,
    );
    expect(made.stderr).toBe('');
    expect(JSON.parse(made.stdout)).toMatchObject({ name: 'dist', loginServer: dist.host });
    for (const out of [made.stdout, (await cli('credential-set', 'show', 'dist')).stdout])
      expect(out).not.toContain(dist.password);
    const listed = await cli('credential-set', 'list');
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((s) => s.name)).toEqual(['dist']);
    expect(listed.stdout).not.toContain(dist.user);

    const ok = await cli(
      'import',
      '--source',
      `${dist.host}/lib/app:v1`,
      '--repository',
      'via-set/app',
      '--credential-set',
      'dist',
    );
    expect(ok.stderr).toBe('');
    expect(JSON.parse(ok.stdout)).toMatchObject({ targets: ['via-set/app:v1'] });
    await expectServed(c.primary.url, 'via-set/app', 'v1', fromDist);

    await cli('credential-set', 'update', 'dist', '--username', dist.user, '--password', 'wrong');
    const refused = await cli(
      'import',
      '--source',
      `${dist.host}/lib/app:v1`,
      '--repository',
      'via-wrong-set/app',
      '--credential-set',
      'dist',
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `${dist.host} refused the credentials of credential set "dist"`,
    );
    expect((await get(c.primary.url, '/v2/via-wrong-set/app/manifests/v1', INDEX)).status).toBe(
      404,
    );
    const unknown = await cli(
      'import',
      '--source',
      `${dist.host}/lib/app:v1`,
      '--credential-set',
      'nope',
    );
    expect(unknown.stderr).toContain('404: no credential set "nope"');
    expect((await cli('credential-set', 'delete', 'dist')).code).toBe(0);
    expect((await cli('credential-set', 'show', 'dist')).stderr).toContain('no credential set');
  });

  it('bad input is a 400 and starts nothing', async () => {
    for (const body of [
      {},
      { source: 'not a reference' },
      { source: `${dist.host}/lib/app:v1`, images: ['Bad Name:v1'] },
      { source: `${dist.host}/lib/app:v1`, username: 'x' },
      { source: `${dist.host}/lib/app:v1`, force: 'yes' },
    ]) {
      const r = await api('POST', '', body);
      expect(r.status).toBe(400);
    }
    expect((await api('GET', '/no-such-job')).status).toBe(404);
  });
});
