/**
 * Locks on one node (ADR 0015): what a locked repository, tag or manifest refuses, with the
 * OCI DENIED error naming the lock; what readEnabled and listEnabled hide; write-once rules with
 * a referrer and cosign signature tags going through; skopeo refused on a locked tag.
 */
import { join } from 'node:path';
import type { RegistryEvent } from '@meridian/registry';
import { createClientSandbox, skopeoCopy, type ClientSandbox } from './helpers/clients';
import { expectOciError, ociErrors, RegistryClient, type HttpResponse } from './helpers/http';
import { artifact, image, imageManifest, randomBlob, configBlob } from './helpers/images';
import { startTestNode, type TestNode } from './helpers/node';
import { buildImage, writeOciLayout } from './helpers/oci-layout';

jest.setTimeout(120_000);

/** `PUT /meridian/v1/admin/locks`. */
function setLock(c: RegistryClient, body: Record<string, unknown>): Promise<HttpResponse> {
  return c.put('/meridian/v1/admin/locks', {
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' },
  });
}

async function lock(c: RegistryClient, body: Record<string, unknown>): Promise<unknown> {
  const r = await setLock(c, body);
  expect(r.status).toBe(200);
  return r.json();
}

function expectDenied(r: HttpResponse, lockedBy: RegExp): void {
  expectOciError(r, 403, 'DENIED');
  expect(ociErrors(r)[0]!.message).toMatch(lockedBy);
}

describe('locks on a node', () => {
  let node: TestNode;
  let c: RegistryClient;

  beforeAll(async () => {
    node = await startTestNode();
    c = new RegistryClient(node.url);
  });
  afterAll(async () => {
    await node?.close();
  });

  it('a tag with writeEnabled=false cannot be overwritten or deleted, by tag or by digest', async () => {
    const a = image();
    const b = image();
    await c.pushImage('tl/app', 'v1', a.blobs, a.manifest);
    await c.pushImage('tl/app', 'other', b.blobs, b.manifest);
    await lock(c, { repository: 'tl/app', tag: 'v1', writeEnabled: false });

    expectDenied(await c.putManifest('tl/app', 'v1', b.manifest), /writeEnabled=false on tag v1/);
    expectDenied(await c.delete('/v2/tl/app/manifests/v1'), /tag tl\/app:v1 is locked/);
    expectDenied(
      await c.delete(`/v2/tl/app/manifests/${a.manifest.digest}`),
      /deleteEnabled=false on tag v1/,
    );
    // Still served, and other tags move freely.
    expect((await c.get('/v2/tl/app/manifests/v1')).status).toBe(200);
    expect((await c.putManifest('tl/app', 'other', a.manifest)).status).toBe(201);

    // The effective lock is in the listing, and unlocking gives the tag back.
    const show = (await c.get('/meridian/v1/admin/locks?repository=tl/app')).json<{
      tags: { tag: string; effective: { writeEnabled: boolean; lockedBy: object } }[];
    }>();
    expect(show.tags.find((t) => t.tag === 'v1')?.effective).toMatchObject({
      writeEnabled: false,
      lockedBy: { writeEnabled: 'tag v1', deleteEnabled: 'tag v1' },
    });
    expect(show.tags.find((t) => t.tag === 'other')?.effective.writeEnabled).toBe(true);
    await lock(c, { repository: 'tl/app', tag: 'v1', writeEnabled: true });
    expect((await c.putManifest('tl/app', 'v1', b.manifest)).status).toBe(201);
  });

  it('deleteEnabled=false forbids deleting but not overwriting', async () => {
    const a = image();
    const b = image();
    await c.pushImage('dl/app', 'v1', a.blobs, a.manifest);
    await lock(c, { repository: 'dl/app', tag: 'v1', deleteEnabled: false });
    expectDenied(await c.delete('/v2/dl/app/manifests/v1'), /deleteEnabled=false on tag v1/);
    await c.pushImage('dl/app', 'v1', b.blobs, b.manifest);
    expect((await c.get('/v2/dl/app/manifests/v1')).header('docker-content-digest')).toBe(
      b.manifest.digest,
    );
  });

  it('a manifest lock protects the image whichever tag names it', async () => {
    const a = image();
    const b = image();
    await c.pushImage('ml/app', 'prod', a.blobs, a.manifest);
    await lock(c, { repository: 'ml/app', digest: a.manifest.digest, writeEnabled: false });
    expectDenied(await c.putManifest('ml/app', 'prod', b.manifest), /on manifest sha256:/);
    expectDenied(await c.delete(`/v2/ml/app/manifests/${a.manifest.digest}`), /on manifest/);
    // A new tag may point at it.
    expect((await c.putManifest('ml/app', 'also', a.manifest)).status).toBe(201);
    const unknown = await setLock(c, {
      repository: 'ml/app',
      digest: b.manifest.digest,
      writeEnabled: false,
    });
    expectOciError(unknown, 404, 'MANIFEST_UNKNOWN');
  });

  it('a repository lock refuses uploads, pushes and deletes of anything in it', async () => {
    const a = image();
    await c.pushImage('rl/app', 'v1', a.blobs, a.manifest);
    await lock(c, { repository: 'rl/app', writeEnabled: false });
    expectDenied(await c.startUpload('rl/app'), /writeEnabled=false on repository/);
    expectDenied(await c.putManifest('rl/app', 'v2', a.manifest), /repository rl\/app is locked/);
    expectDenied(
      await c.delete(`/v2/rl/app/blobs/${a.layers[0]!.digest}`),
      /deleteEnabled=false on repository/,
    );
    expectDenied(await c.delete('/v2/rl/app/manifests/v1'), /on repository/);
    await lock(c, { repository: 'rl/app', writeEnabled: true });
    expect((await c.startUpload('rl/app')).status).toBe(202);
  });

  it('readEnabled=false refuses pulls of manifests and blobs', async () => {
    const a = image();
    await c.pushImage('rd/app', 'v1', a.blobs, a.manifest);
    await lock(c, { repository: 'rd/app', tag: 'v1', readEnabled: false });
    expectDenied(await c.get('/v2/rd/app/manifests/v1'), /readEnabled=false on tag v1/);
    expect((await c.head('/v2/rd/app/manifests/v1')).status).toBe(403);
    // By digest, the tag's lock does not apply; the repository's does.
    expect((await c.get(`/v2/rd/app/manifests/${a.manifest.digest}`)).status).toBe(200);
    await lock(c, { repository: 'rd/app', readEnabled: false });
    expectDenied(await c.get(`/v2/rd/app/manifests/${a.manifest.digest}`), /on repository/);
    expectDenied(await c.get(`/v2/rd/app/blobs/${a.layers[0]!.digest}`), /on repository/);
    await lock(c, { repository: 'rd/app', readEnabled: true });
    expect((await c.get(`/v2/rd/app/blobs/${a.layers[0]!.digest}`)).status).toBe(200);
  });

  it('listEnabled=false hides a tag from tag lists, a manifest from referrers, a repository from the catalog', async () => {
    const a = image();
    const b = image();
    await c.pushImage('ls/app', 'shown', a.blobs, a.manifest);
    await c.pushImage('ls/app', 'hidden', b.blobs, b.manifest);
    const sig = artifact({ subject: a.manifest, artifactType: 'application/vnd.example.sig' });
    for (const blob of sig.blobs) await c.uploadBlob('ls/app', blob);
    await c.putManifest('ls/app', sig.manifest.digest, sig.manifest);
    const tags = async () => (await c.get('/v2/ls/app/tags/list')).json<{ tags: string[] }>().tags;
    const catalog = async () =>
      (await c.get('/v2/_catalog')).json<{ repositories: string[] }>().repositories;
    const referrers = async () =>
      (await c.get(`/v2/ls/app/referrers/${a.manifest.digest}`)).json<{ manifests: unknown[] }>()
        .manifests;

    await lock(c, { repository: 'ls/app', tag: 'hidden', listEnabled: false });
    expect(await tags()).toEqual(['shown']);
    // Hidden from lists, still pullable.
    expect((await c.get('/v2/ls/app/manifests/hidden')).status).toBe(200);

    expect(await referrers()).toHaveLength(1);
    await lock(c, { repository: 'ls/app', digest: sig.manifest.digest, listEnabled: false });
    expect(await referrers()).toHaveLength(0);
    await lock(c, { repository: 'ls/app', digest: a.manifest.digest, listEnabled: false });
    expect(await tags()).toEqual([]);

    expect(await catalog()).toContain('ls/app');
    await lock(c, { repository: 'ls/app', listEnabled: false });
    expect(await catalog()).not.toContain('ls/app');
    await lock(c, { repository: 'ls/app', listEnabled: true });
    expect(await catalog()).toContain('ls/app');
  });

  it('write-once rules make matching tags immutable, while referrers and signature tags go through', async () => {
    // Set before the first push: the repository does not need to exist yet.
    await lock(c, { repository: 'wo/app', writeOnce: ['v*', 'regex:release-[0-9]+'] });
    const a = image();
    const b = image();
    await c.pushImage('wo/app', 'v1.0', a.blobs, a.manifest);
    await c.pushImage('wo/app', 'release-7', a.blobs, a.manifest);
    for (const blob of b.blobs) await c.uploadBlob('wo/app', blob);
    // The same content again is not a change; other content is refused, and so is a delete.
    expect((await c.putManifest('wo/app', 'v1.0', a.manifest)).status).toBe(201);
    expectDenied(await c.putManifest('wo/app', 'v1.0', b.manifest), /write-once rule v\*/);
    expectDenied(
      await c.putManifest('wo/app', 'release-7', b.manifest),
      /write-once rule regex:release-\[0-9\]\+/,
    );
    expectDenied(await c.delete('/v2/wo/app/manifests/v1.0'), /write-once rule/);
    expectDenied(await c.delete(`/v2/wo/app/manifests/${a.manifest.digest}`), /write-once rule/);
    // Tags no rule matches move freely.
    expect((await c.putManifest('wo/app', 'latest', a.manifest)).status).toBe(201);
    expect((await c.putManifest('wo/app', 'latest', b.manifest)).status).toBe(201);

    // An OCI 1.1 referrer of the immutable image.
    const sbom = artifact({ subject: a.manifest, artifactType: 'application/spdx+json' });
    for (const blob of sbom.blobs) await c.uploadBlob('wo/app', blob);
    const r = await c.putManifest('wo/app', sbom.manifest.digest, sbom.manifest);
    expect(r.status).toBe(201);
    expect(r.header('oci-subject')).toBe(a.manifest.digest);

    // cosign's signature tag, even under a rule that matches every tag, is rewritten on each
    // new signature.
    await lock(c, { repository: 'wo/app', writeOnce: ['*'] });
    const sigTag = `${a.manifest.digest.replace(':', '-')}.sig`;
    for (let i = 0; i < 2; i++) {
      const payload = randomBlob(40, 'application/vnd.dev.cosign.simplesigning.v1+json');
      const config = configBlob();
      await c.uploadBlob('wo/app', payload);
      await c.uploadBlob('wo/app', config);
      const m = imageManifest({ config, layers: [payload] });
      expect((await c.putManifest('wo/app', sigTag, m)).status).toBe(201);
    }
    expectDenied(await c.putManifest('wo/app', 'latest', a.manifest), /write-once rule \*/);

    const show = (await c.get('/meridian/v1/admin/locks?repository=wo/app&tag=v1.0')).json<{
      effective: { writeEnabled: boolean; lockedBy: Record<string, string> };
    }>();
    expect(show.effective.lockedBy.writeEnabled).toBe('write-once rule *');
    const bad = await setLock(c, { repository: 'wo/app', writeOnce: ['regex:(('] });
    expectOciError(bad, 400, 'UNSUPPORTED');
  });

  it('a lock change is a lockChanged event with the request that made it', async () => {
    const a = image();
    await c.pushImage('ev/app', 'v1', a.blobs, a.manifest);
    const seen: RegistryEvent[] = [];
    const off = node.registry.events.subscribe((e) => void seen.push(e));
    const r = await setLock(c, { repository: 'ev/app', tag: 'v1', deleteEnabled: false });
    off();
    const e = seen.find((x) => x.type === 'lockChanged');
    expect(e).toMatchObject({
      repository: 'ev/app',
      tag: 'v1',
      deleteEnabled: false,
      writeEnabled: true,
      seq: r.json<{ seq: number }>().seq,
      requestId: r.header('x-request-id'),
      actor: { kind: 'anonymous' },
    });
  });

  it('refuses a body it does not understand', async () => {
    expectOciError(await setLock(c, { repository: 'x/y', writeEnabled: 'no' }), 400, 'UNSUPPORTED');
    expectOciError(await setLock(c, { repository: 'x/y', locked: true }), 400, 'UNSUPPORTED');
    expectOciError(
      await setLock(c, { repository: 'x/y', tag: 'v1', writeOnce: ['*'] }),
      400,
      'UNSUPPORTED',
    );
    expectOciError(await setLock(c, { repository: 'Bad Name' }), 400, 'UNSUPPORTED');
  });
});

describe('skopeo and a locked tag', () => {
  let node: TestNode;
  let sb: ClientSandbox;

  beforeAll(async () => {
    node = await startTestNode();
    sb = await createClientSandbox();
  });
  afterAll(async () => {
    await sb?.close();
    await node?.close();
  });

  it('is refused with the lock named, and pushes again once unlocked', async () => {
    const layout = join(sb.dir, 'src');
    writeOciLayout(layout, { one: buildImage(), two: buildImage() });
    const dest = `docker://${node.host}/sk/app:v1`;
    await skopeoCopy(sb, `oci:${layout}:one`, dest);
    const c = new RegistryClient(node.url);
    await lock(c, { repository: 'sk/app', tag: 'v1', writeEnabled: false });
    const err = await skopeoCopy(sb, `oci:${layout}:two`, dest).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/denied/i);
    expect(err?.message).toMatch(/writeEnabled=false on tag v1/);
    await lock(c, { repository: 'sk/app', tag: 'v1', writeEnabled: true });
    await skopeoCopy(sb, `oci:${layout}:two`, dest);
  });
});
