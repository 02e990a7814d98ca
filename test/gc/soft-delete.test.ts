import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GarbageCollector, attachGcCandidates, parseFilter, purge } from '@meridian/lifecycle';
import { parseDigest } from '@meridian/oci';
import { Registry } from '@meridian/registry';
import { Layout, RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { purgeTarget } from '../../packages/cli/src/gc-wiring';
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
  sleep,
} from './gc-helpers';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Soft delete on one region's storage, with GC and purge (fs driver, no server). */
describe('soft delete', () => {
  let dir: string;
  let store: ObjectStore;
  let reg: Registry;
  let layout: RepositoryLayout;
  let detach: () => Promise<void>;

  const gc = () =>
    new GarbageCollector({
      region: 'eastus',
      store,
      role: 'primary',
      guard: reg.guard,
      purgeTombstones: () => reg.recycleBin.purge(),
    });
  const has = (d: string) => layout.hasBlob(parseDigest(d));
  const notes = async () => {
    for (let i = 0; i < 100 && (await store.list(Layout.gcRoot)).objects.length === 0; i++)
      await sleep(20);
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-soft-'));
    store = await openStore(dir);
    reg = new Registry({ store, softDeleteMs: 7 * DAY, cache: { ttlMs: 0 } });
    layout = new RepositoryLayout(store);
    detach = await attachGcCandidates(reg, store);
  });
  afterEach(async () => {
    await detach();
    await reg.events.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a deleted manifest is gone from pulls, kept from GC, restorable with its tags, then purged and freed', async () => {
    const [c, l] = [randomBlob(), randomBlob(4096)];
    const m = await pushImage(reg, 'app', 'v1', c, [l]);
    await reg.manifests.put(
      'app',
      'stable',
      (await reg.manifests.get('app', 'v1')).bytes,
      OCI_MANIFEST,
    );
    await reg.manifests.delete('app', m);
    await expect(reg.manifests.get('app', 'v1')).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    });
    await expect(reg.manifests.get('app', m)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    const bin = await reg.recycleBin.list('app');
    expect(bin).toHaveLength(1);
    expect(bin[0]).toMatchObject({ digest: m, tags: ['stable', 'v1'] });
    expect(Date.parse(bin[0]!.expiresAt) - Date.parse(bin[0]!.deletedAt)).toBe(7 * DAY);

    // GC, full and incremental, keeps everything it needs.
    await notes();
    await ageAll(dir, 2 * DAY);
    for (const mode of ['incremental', 'full'] as const)
      expect(await gc().run({ graceMs: HOUR, mode })).toMatchObject({
        linksRemoved: 0,
        blobsDeleted: 0,
      });
    for (const d of [c.digest, l.digest, m]) expect(await has(d)).toBe(true);

    const r = await reg.recycleBin.restore('app', m);
    expect(r.restored).toEqual([{ digest: m, tags: ['stable', 'v1'] }]);
    await pullImage(reg, 'app', 'v1');
    await pullImage(reg, 'app', 'stable');
    expect(await reg.recycleBin.list('app')).toEqual([]);

    // Deleted again; past its retention the next GC run purges it, and the one after frees it.
    await reg.manifests.delete('app', m);
    expect(await reg.recycleBin.purge({ now: Date.now() + 6 * DAY })).toBe(0);
    expect(await reg.recycleBin.purge({ now: Date.now() + 8 * DAY })).toBe(1);
    await notes();
    await ageAll(dir, 2 * DAY);
    const run = await gc().run({ graceMs: HOUR, mode: 'incremental' });
    expect(run).toMatchObject({ blobsDeleted: 3 });
    for (const d of [c.digest, l.digest, m]) expect(await has(d)).toBe(false);
  });

  it('purge --untagged moves an index, its children and its signature to the bin; a restore brings them all back', async () => {
    const children = [];
    for (const arch of ['amd64', 'arm64']) {
      const [c, l] = [randomBlob(), randomBlob()];
      await Promise.all([c, l].map((b) => pushBlob(reg, 'multi', b)));
      const bytes = imageManifest(c, [l]);
      await reg.manifests.put('multi', sha256(bytes), bytes, OCI_MANIFEST);
      children.push({
        mediaType: OCI_MANIFEST,
        digest: sha256(bytes),
        size: bytes.length,
        platform: { os: 'linux', architecture: arch },
      });
    }
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }),
    );
    await reg.manifests.put('multi', 'v1', index, OCI_INDEX);
    const sigConfig = blobOf(Buffer.from('{}'));
    await pushBlob(reg, 'multi', sigConfig);
    const sig = imageManifest(sigConfig, [], {
      subject: { mediaType: OCI_INDEX, digest: sha256(index), size: index.length },
    });
    await reg.manifests.put('multi', sha256(sig), sig, OCI_MANIFEST);
    await pushImage(reg, 'multi', 'other', randomBlob(), [randomBlob()]);

    const r = await purge(layout, purgeTarget(reg, layout), {
      filters: [parseFilter('multi:v1')],
      untagged: true,
      dryRun: false,
    });
    expect(r.totals).toMatchObject({ tags: 1, manifests: 4 });
    expect((await reg.recycleBin.list('multi')).map((t) => t.digest).sort()).toEqual(
      [sha256(index), sha256(sig), ...children.map((c) => c.digest)].sort(),
    );
    // Purge untagged it before deleting: restore it under its tag.
    const restored = await reg.recycleBin.restore('multi', sha256(index), ['v1']);
    expect(restored.restored.map((x) => x.digest)).toEqual([
      ...children.map((c) => c.digest),
      sha256(index),
      sha256(sig),
    ]);
    await pullImage(reg, 'multi', 'v1');
    expect((await reg.manifests.referrers('multi', sha256(index))).map((x) => x.digest)).toEqual([
      sha256(sig),
    ]);
    expect(await reg.recycleBin.list('multi')).toEqual([]);
  });
});
