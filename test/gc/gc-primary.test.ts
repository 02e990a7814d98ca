import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GarbageCollector, attachGcCandidates, type GcHooks } from '@meridian/lifecycle';
import { parseDigest } from '@meridian/oci';
import { Registry } from '@meridian/registry';
import { Layout, RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  ageAll,
  blobOf,
  imageManifest,
  pullImage,
  pushBlob,
  pushImage,
  randomBlob,
  sha256,
  upload,
} from './gc-helpers';

const HOUR = 3_600_000;

async function waitUntil(fn: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out');
}
const GRACE = 10 * 60_000;

/** GC on a primary's own storage, driven through the registry's domain (fs driver, no server). */
describe('garbage collection on a primary', () => {
  let dir: string;
  let store: ObjectStore;
  let reg: Registry;
  let layout: RepositoryLayout;
  let unlinked: string[];

  const collector = (hooks?: GcHooks) =>
    new GarbageCollector({
      region: 'eastus',
      store,
      role: 'primary',
      guard: reg.guard,
      purgeUploads: () => reg.uploads.purgeExpired(),
      // As the node wires it: an unlink is an event like any other.
      onUnlinked: async (repository, digest) => {
        unlinked.push(`${repository}@${digest}`);
        await reg.events.emit({ type: 'blobDeleted', repository, digest, at: Date.now() });
      },
      hooks,
    });
  const has = (digest: string) => layout.hasBlob(parseDigest(digest));

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-gc-'));
    store = await openStore(dir);
    reg = new Registry({ store, gcMinGraceMs: GRACE, cache: { ttlMs: 0 } });
    layout = new RepositoryLayout(store);
    unlinked = [];
  });
  afterEach(async () => {
    await reg.events.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('frees what a deleted image alone used, keeps what others use, and a dry run changes nothing', async () => {
    const shared = randomBlob(4096);
    const [c1, l1, c2, l2] = [randomBlob(), randomBlob(8192), randomBlob(), randomBlob()];
    const m1 = await pushImage(reg, 'app', 'v1', c1, [shared, l1]);
    await pushImage(reg, 'app', 'v2', c2, [shared, l2]);
    await reg.manifests.delete('app', m1);
    await ageAll(dir, HOUR);

    const dry = await collector().run({ graceMs: GRACE, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, linksRemoved: 2, blobsDeleted: 3 });
    expect(dry.bytesFreed).toBe(c1.size + l1.size + imageManifest(c1, [shared, l1]).length);
    for (const b of [c1, l1, shared]) expect(await has(b.digest)).toBe(true);
    expect(await has(m1)).toBe(true);

    const run = await collector().run({ graceMs: GRACE });
    expect(run).toMatchObject({ linksRemoved: 2, blobsDeleted: 3, bytesFreed: dry.bytesFreed });
    for (const b of [c1, l1]) expect(await has(b.digest)).toBe(false);
    expect(await has(m1)).toBe(false);
    expect(unlinked.sort()).toEqual([`app@${c1.digest}`, `app@${l1.digest}`].sort());
    await pullImage(reg, 'app', 'v2');

    // Nothing more to do: a second run frees nothing.
    expect(await collector().run({ graceMs: GRACE })).toMatchObject({
      linksRemoved: 0,
      blobsDeleted: 0,
    });
  });

  it('keeps everything younger than the grace period', async () => {
    const [c, l] = [randomBlob(), randomBlob()];
    const m = await pushImage(reg, 'app', 'v1', c, [l]);
    await reg.manifests.delete('app', m);
    const orphan = randomBlob();
    await upload(reg, 'other', orphan);
    await reg.blobs.delete('other', orphan.digest);
    const run = await collector().run({ graceMs: GRACE });
    expect(run).toMatchObject({ linksRemoved: 0, blobsDeleted: 0 });
    for (const b of [c, l, orphan]) expect(await has(b.digest)).toBe(true);
  });

  it('a HEAD re-confirms an old link: a push that skips the layer keeps it', async () => {
    const [c, l] = [randomBlob(), randomBlob()];
    const m = await pushImage(reg, 'app', 'v1', c, [l]);
    await reg.manifests.delete('app', m);
    await ageAll(dir, HOUR);
    expect(await pushBlob(reg, 'app', l)).toBe('skipped'); // the client's HEAD
    await collector().run({ graceMs: GRACE }); // runs between the HEAD and the manifest PUT
    const c2 = randomBlob();
    await pushBlob(reg, 'app', c2);
    await reg.manifests.put('app', 'v2', imageManifest(c2, [l]), OCI_MANIFEST);
    await pullImage(reg, 'app', 'v2');
  });

  it('never breaks an index, its untagged children, referrers or cross-repository mounts', async () => {
    const shared = randomBlob();
    const children = await Promise.all(
      ['amd64', 'arm64'].map(async (arch) => {
        const [c, l] = [randomBlob(), randomBlob()];
        await Promise.all([c, l, shared].map((b) => pushBlob(reg, 'multi', b)));
        const bytes = imageManifest(c, [shared, l]);
        await reg.manifests.put('multi', sha256(bytes), bytes, OCI_MANIFEST);
        return { digest: sha256(bytes), size: bytes.length, arch };
      }),
    );
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: children.map((c) => ({
          mediaType: OCI_MANIFEST,
          digest: c.digest,
          size: c.size,
          platform: { os: 'linux', architecture: c.arch },
        })),
      }),
    );
    await reg.manifests.put('multi', 'latest', index, OCI_INDEX);
    // A signature referring to the index (an untagged referrer).
    const sigConfig = blobOf(Buffer.from('{}'));
    const sigLayer = randomBlob();
    await Promise.all([sigConfig, sigLayer].map((b) => pushBlob(reg, 'multi', b)));
    const sig = imageManifest(sigConfig, [sigLayer], {
      subject: { mediaType: OCI_INDEX, digest: sha256(index), size: index.length },
    });
    await reg.manifests.put('multi', sha256(sig), sig, OCI_MANIFEST);
    // The shared layer mounted into another repository and used there.
    expect(await reg.uploads.mountOrCreate('mounted', shared.digest, 'multi')).toHaveProperty(
      'mounted',
    );
    const c3 = randomBlob();
    await pushBlob(reg, 'mounted', c3);
    await reg.manifests.put('mounted', 'v1', imageManifest(c3, [shared]), OCI_MANIFEST);

    await ageAll(dir, HOUR);
    expect(await collector().run({ graceMs: GRACE })).toMatchObject({
      linksRemoved: 0,
      blobsDeleted: 0,
    });
    await pullImage(reg, 'multi', 'latest');
    await pullImage(reg, 'multi', sha256(sig));
    await pullImage(reg, 'mounted', 'v1');
    expect((await reg.manifests.referrers('multi', sha256(index))).map((r) => r.digest)).toEqual([
      sha256(sig),
    ]);

    // Deleting the index frees its own bytes only: children are manifests, which GC never takes.
    await reg.manifests.delete('multi', sha256(index));
    await ageAll(dir, HOUR);
    const run = await collector().run({ graceMs: GRACE });
    expect(run).toMatchObject({ linksRemoved: 0, blobsDeleted: 1, bytesFreed: index.length });
    for (const c of children) await pullImage(reg, 'multi', c.digest);
    await pullImage(reg, 'mounted', 'v1');
  });

  it('incremental runs free what deletes left behind, and keep a child an index still names', async () => {
    const detach = await attachGcCandidates(reg, store);
    const markers = async () => (await store.list(Layout.gcRoot)).objects.length;
    const shared = randomBlob();
    const [c1, l1, c2, l2] = [randomBlob(), randomBlob(), randomBlob(), randomBlob()];
    const m1 = await pushImage(reg, 'inc', 'v1', c1, [shared, l1]);
    await pushImage(reg, 'inc', 'v2', c2, [shared, l2]);
    await reg.manifests.delete('inc', m1);
    // The subscriber writes its notes after the reply, from the event journal.
    await waitUntil(async () => (await store.list(Layout.gcCandidatesRoot)).objects.length === 1);
    await ageAll(dir, HOUR);
    const run = await collector().run({ graceMs: GRACE, mode: 'incremental' });
    expect(run).toMatchObject({
      mode: 'incremental',
      repositories: 1,
      linksRemoved: 2,
      blobsDeleted: 3,
    });
    for (const d of [c1.digest, l1.digest, m1]) expect(await has(d)).toBe(false);
    await pullImage(reg, 'inc', 'v2');
    // Its own unlinks are noted too; the next run finds nothing more and clears every note.
    await waitUntil(async () => (await store.list(Layout.gcCandidatesRoot)).objects.length >= 2);
    await ageAll(dir, HOUR);
    expect(await collector().run({ graceMs: GRACE, mode: 'incremental' })).toMatchObject({
      linksRemoved: 0,
      blobsDeleted: 0,
    });
    expect((await store.list(Layout.gcCandidatesRoot)).objects).toEqual([]);
    expect(await markers()).toBe(0);

    // A child deleted from under its index: the index still names it, so its bytes stay, run
    // after run (the repository stays on the list while it references what it does not link).
    const [cc, cl] = [randomBlob(), randomBlob()];
    await Promise.all([cc, cl].map((b) => pushBlob(reg, 'inc', b)));
    const child = imageManifest(cc, [cl]);
    await reg.manifests.put('inc', sha256(child), child, OCI_MANIFEST);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(child), size: child.length }],
      }),
    );
    await reg.manifests.put('inc', 'multi', index, OCI_INDEX);
    await reg.manifests.delete('inc', sha256(child));
    await waitUntil(async () => (await store.list(Layout.gcCandidatesRoot)).objects.length === 1);
    for (let i = 0; i < 2; i++) {
      await ageAll(dir, HOUR);
      const r = await collector().run({ graceMs: GRACE, mode: 'incremental' });
      expect(r).toMatchObject({ blobsDeleted: 0, linksRemoved: 0 });
      for (const d of [sha256(child), cc.digest, cl.digest]) expect(await has(d)).toBe(true);
      expect(await layout.repositoryExists('inc')).toBe(true);
      expect((await store.list(Layout.gcDirtyRoot)).objects.map((o) => o.key)).toEqual([
        Layout.gcDirty('inc'),
      ]);
    }
    await detach();
  });

  it('purges stale upload sessions and staged copies', async () => {
    await reg.events.close();
    reg = new Registry({ store, gcMinGraceMs: GRACE, uploads: { idleTimeoutMs: HOUR } });
    const session = await reg.uploads.create('app');
    // Idle for two hours: its state says so (no clock to wait for).
    const key = Layout.uploadState(session.id);
    const state = JSON.parse((await store.getBytes(key)).toString()) as { updatedAt: number };
    await store.put(
      key,
      Buffer.from(JSON.stringify({ ...state, updatedAt: Date.now() - 2 * HOUR })),
    );
    await store.put(Layout.staging('copy-1'), Buffer.from('half a copy'));
    await ageAll(dir, 48 * HOUR);
    const live = await reg.uploads.create('app');
    await reg.uploads.append('app', live.id, Readable.from([Buffer.from('x')]));
    const run = await collector().run({ graceMs: GRACE });
    expect(run.uploadsPurged).toBe(1);
    expect(run.stagingRemoved).toBe(1);
    await expect(reg.uploads.get('app', session.id)).rejects.toMatchObject({
      code: 'BLOB_UPLOAD_UNKNOWN',
    });
    expect((await reg.uploads.get('app', live.id)).offset).toBe(1);
    expect((await store.list(Layout.stagingRoot)).objects).toEqual([]);
  });

  it('a crash at any step leaves nothing reachable broken, and the next run finishes the job', async () => {
    for (const step of ['unlink', 'delete'] as const) {
      // The deleted image leaves two links (config, layer) and three blobs (and its manifest).
      for (let at = 0; at < (step === 'unlink' ? 2 : 3); at++) {
        const [c, l, keep] = [randomBlob(), randomBlob(), randomBlob()];
        const m = await pushImage(reg, `crash-${step}-${at}`, 'old', c, [l, keep]);
        await pushImage(reg, `crash-${step}-${at}`, 'new', randomBlob(), [keep]);
        await reg.manifests.delete(`crash-${step}-${at}`, m);
        await ageAll(dir, HOUR);
        let n = 0;
        const die = async () => {
          if (n++ === at) throw new Error('SIGKILL');
        };
        const hooks: GcHooks = step === 'unlink' ? { beforeUnlink: die } : { beforeDelete: die };
        await expect(collector(hooks).run({ graceMs: GRACE })).rejects.toThrow('SIGKILL');
        await pullImage(reg, `crash-${step}-${at}`, 'new');
        await collector().run({ graceMs: GRACE });
        for (const b of [c, l]) expect(await has(b.digest)).toBe(false);
        expect(await has(m)).toBe(false);
        await pullImage(reg, `crash-${step}-${at}`, 'new');
      }
    }
  });
});
