import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf, parseDigest } from '@meridian/oci';
import { Layout, parseKey } from './layout';
import type { ObjectStore } from './object-store';
import { putInOrder } from './object-helpers';
import { openStore } from './open-store';
import { RepositoryLayout, manifestPlan, tagEntry } from './repository-layout';

const d = (s: string) => parseDigest(digestOf(s));
const config = d('config');
const layer = d('layer');
const subject = d('subject');

describe('parseKey', () => {
  it('inverts every key builder of repository state', () => {
    const repo = 'team/app_x/web';
    expect(parseKey(Layout.blobData(layer))).toEqual({ kind: 'blob', digest: layer.value });
    expect(parseKey(Layout.layerLink(repo, layer))).toEqual({
      kind: 'layer',
      repository: repo,
      digest: layer.value,
    });
    expect(parseKey(Layout.revisionLink(repo, config))).toEqual({
      kind: 'revision',
      repository: repo,
      digest: config.value,
    });
    expect(parseKey(Layout.tagCurrent(repo, 'v1.0_rc-1'))).toEqual({
      kind: 'tag',
      repository: repo,
      tag: 'v1.0_rc-1',
    });
    expect(parseKey(Layout.lock(repo, { scope: 'repository' }))).toEqual({
      kind: 'lock',
      repository: repo,
      target: { scope: 'repository' },
    });
    expect(parseKey(Layout.lock(repo, { scope: 'tag', tag: '_v1' }))).toEqual({
      kind: 'lock',
      repository: repo,
      target: { scope: 'tag', tag: '_v1' },
    });
    expect(parseKey(Layout.lock(repo, { scope: 'manifest', digest: config.value }))).toEqual({
      kind: 'lock',
      repository: repo,
      target: { scope: 'manifest', digest: config.value },
    });
    expect(parseKey(`repositories/${repo}/_locks/elsewhere`)).toBeUndefined();
    expect(parseKey(Layout.referrer(repo, subject, config))).toEqual({
      kind: 'referrer',
      repository: repo,
      subject: subject.value,
      digest: config.value,
    });
  });

  it.each([
    Layout.uploadState('abc'),
    Layout.staging('x'),
    'repositories/app/_manifests/tags/v1/index/sha256:00',
    'repositories/_layers/sha256/ab/link',
    'repositories/app/_layers/sha256/ab/other',
    'blobs/sha256/ab/abcd',
  ])('knows no other key: %s', (key) => {
    expect(parseKey(key)).toBeUndefined();
  });
});

describe('manifestPlan', () => {
  it('orders content, revision link, then referrer entry after blobs and children', () => {
    const m = d('manifest');
    const child = d('child');
    const plan = manifestPlan('app', m, {
      blobs: [{ mediaType: 'x', digest: layer.value, size: 1 }],
      children: [{ mediaType: 'y', digest: child.value, size: 1 }],
      subject: { mediaType: 'z', digest: subject.value, size: 1 },
    });
    expect(plan.blobs.map((b) => b.value)).toEqual([layer.value]);
    expect(plan.children.map((c) => c.value)).toEqual([child.value]);
    expect(plan.subject?.value).toBe(subject.value);
    expect(plan.keys).toEqual([
      { kind: 'content', key: Layout.blobData(m) },
      { kind: 'revision', key: Layout.revisionLink('app', m) },
      { kind: 'referrer', key: Layout.referrer('app', subject, m) },
    ]);
  });
});

describe('RepositoryLayout over the fs driver', () => {
  let dir: string;
  let store: ObjectStore;
  let layout: RepositoryLayout;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-layout-'));
    store = await openStore(dir);
    layout = new RepositoryLayout(store);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function putManifest(repo: string, body: object, tag?: string) {
    const bytes = Buffer.from(JSON.stringify(body));
    const digest = parseDigest(digestOf(bytes));
    const s = (body as { subject?: { digest: string; mediaType: string; size: number } }).subject;
    const plan = manifestPlan(repo, digest, { blobs: [], children: [], subject: s });
    const revision = { digest: digest.value, mediaType: 'application/x', size: bytes.length };
    const tagWrite = tag
      ? tagEntry(repo, tag, { digest: digest.value, seq: 1, updatedAt: 'now' })
      : undefined;
    const writes = layout.manifestWrites(plan, {
      bytes,
      revision,
      parsed: { artifactType: 'application/sig' },
      contentStored: false,
      tag: tagWrite,
    });
    await putInOrder(store, writes);
    return { digest, writes };
  }

  it('writes a manifest in visibility order and reads it back', async () => {
    const { digest, writes } = await putManifest('app', { a: 1 }, 'latest');
    expect(writes.map((w) => parseKey(w.key)?.kind)).toEqual(['blob', 'revision', 'tag']);
    expect(await layout.readRevision('app', digest)).toMatchObject({ digest: digest.value });
    expect(await layout.readTag('app', 'latest')).toMatchObject({ digest: digest.value, seq: 1 });
    expect(await layout.hasRevision('app', digest)).toBe(true);
    expect(await layout.isLinked('app', digest)).toBe(true);
    expect(await layout.isLinked('other', digest)).toBe(false);
    expect(await layout.listRevisions('app')).toEqual([digest.value]);
    expect(await layout.listTags('app')).toEqual(['latest']);
    expect(await layout.repositoryExists('app')).toBe(true);
    expect(await layout.repositoryExists('nope')).toBe(false);
  });

  it('a repository nested under a name does not make that name a repository', async () => {
    await putManifest('team/app', { a: 2 }, 'v1');
    await putManifest('team/0cfg', { a: 3 }, 'v1');
    expect(await layout.repositoryExists('team/app')).toBe(true);
    expect(await layout.repositoryExists('team')).toBe(false);
  });

  it('skips content already stored', async () => {
    const bytes = Buffer.from('{}');
    const digest = parseDigest(digestOf(bytes));
    const plan = manifestPlan('app', digest, { blobs: [], children: [] });
    const writes = layout.manifestWrites(plan, {
      bytes,
      revision: { digest: digest.value, mediaType: 'm', size: 2 },
      parsed: {},
      contentStored: true,
    });
    expect(writes.map((w) => w.key)).toEqual([Layout.revisionLink('app', digest)]);
  });

  it('lists referrers of a subject and removes a manifest with its referrer entry', async () => {
    const s = { mediaType: 'm', digest: subject.value, size: 1 };
    const { digest } = await putManifest('app', { subject: s });
    expect(await layout.readSubject(digest)).toEqual(subject);
    expect(await layout.listReferrers('app', subject)).toEqual([
      expect.objectContaining({ digest: digest.value, artifactType: 'application/sig' }),
    ]);
    await layout.removeManifest('app', digest, subject);
    expect(await layout.listReferrers('app', subject)).toEqual([]);
    expect(await layout.hasRevision('app', digest)).toBe(false);
    expect(await layout.hasBlob(digest)).toBe(true);
  });

  it('lists layers, tags sorted, repositories, and deletes tags', async () => {
    await store.put(Layout.blobData(layer), Buffer.from('layer'));
    await store.put(Layout.layerLink('a/b', layer), Buffer.from(''));
    await layout.writeTag('a/b', 'v2', { digest: layer.value, seq: 2, updatedAt: 'now' });
    await layout.writeTag('a/b', 'V1', { digest: layer.value, seq: 1, updatedAt: 'now' });
    await layout.writeTag('a/b', 'v10', { digest: layer.value, seq: 3, updatedAt: 'now' });
    await store.put(Layout.layerLink('a/b/c', config), Buffer.from(''));
    expect(await layout.listLayers('a/b')).toEqual([layer.value]);
    expect(await layout.listLayers('a/b/c')).toEqual([config.value]);
    expect(await layout.listTags('a/b')).toEqual(['V1', 'v10', 'v2']);
    expect((await layout.listRepositories()).sort()).toEqual(['a/b', 'a/b/c']);
    expect(await layout.deleteTag('a/b', 'v2')).toBe(true);
    expect(await layout.deleteTag('a/b', 'v2')).toBe(false);
    expect(await layout.listTags('a/b')).toEqual(['V1', 'v10']);
    await layout.unlinkLayer('a/b', layer);
    expect(await layout.hasLayer('a/b', layer)).toBe(false);
    expect(await layout.readSubject(layer)).toBeUndefined();
  });

  it('stores lock records per target, lists them, and shows which repositories have locks', async () => {
    const rec = (seq: number) => ({
      deleteEnabled: false,
      writeEnabled: true,
      readEnabled: true,
      listEnabled: true,
      seq,
      updatedAt: 'now',
    });
    await store.put(Layout.layerLink('a/b', layer), Buffer.from(''));
    await layout.writeLock('a/b', { scope: 'repository' }, { ...rec(1), writeOnce: ['v*'] });
    await layout.writeLock('a/b', { scope: 'tag', tag: 'v1' }, rec(2));
    await layout.writeLock('a/b', { scope: 'manifest', digest: layer.value }, rec(3));
    // A lock set before the first push; and a nested repository's lock is not the parent's.
    await layout.writeLock('new', { scope: 'repository' }, rec(4));
    await layout.writeLock('a/b/c', { scope: 'tag', tag: 'x' }, rec(5));
    expect(await layout.readLock('a/b', { scope: 'tag', tag: 'v1' })).toEqual(rec(2));
    expect(await layout.readLock('a/b', { scope: 'tag', tag: 'v2' })).toBeUndefined();
    const listed = await layout.listLocks('a/b');
    expect(listed.map((l) => [l.target, l.record.seq])).toEqual(
      expect.arrayContaining([
        [{ scope: 'repository' }, 1],
        [{ scope: 'tag', tag: 'v1' }, 2],
        [{ scope: 'manifest', digest: layer.value }, 3],
      ]),
    );
    expect(listed).toHaveLength(3);
    const entries = await layout.listRepositoryEntries();
    expect(Object.fromEntries(entries.map((e) => [e.name, e.parts.sort()]))).toEqual({
      'a/b': ['_layers', '_locks'],
      'a/b/c': ['_locks'],
      new: ['_locks'],
    });
    expect((await layout.scan('a/b')).filter((k) => k.kind === 'lock')).toHaveLength(3);
  });

  it('says when a tag or revision was written (undefined when absent)', async () => {
    expect(await layout.tagModified('app', 'v1')).toBeUndefined();
    const before = Date.now() - 2000; // file systems keep coarse times
    const { digest } = await putManifest('app', { b: 1 }, 'v1');
    expect((await layout.tagModified('app', 'v1'))!.getTime()).toBeGreaterThan(before);
    expect((await layout.revisionModified('app', digest))!.getTime()).toBeGreaterThan(before);
    expect(await layout.revisionModified('other', digest)).toBeUndefined();
  });

  it('stores a blob only when its bytes hash to its digest', async () => {
    await layout.writeBlob(layer, Readable.from([Buffer.from('layer')]), 5);
    expect((await layout.readBlob(layer)).toString()).toBe('layer');
    await expect(
      layout.writeBlob(config, Readable.from([Buffer.from('not config')])),
    ).rejects.toThrow(/digest/i);
    expect(await layout.hasBlob(config)).toBe(false);
  });
});
