import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration, parseFilter, purge, type PurgeTarget } from '@meridian/lifecycle';
import { Registry } from '@meridian/registry';
import { purgeTarget } from '../../packages/cli/src/gc-wiring';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  blobOf,
  imageManifest,
  pushBlob,
  pushImage,
  randomBlob,
  sha256,
} from '../gc/gc-helpers';

const DAY = 86_400_000;

/** The purge engine over the registry's domain (fs driver, no server). */
describe('purge', () => {
  let dir: string;
  let store: ObjectStore;
  let reg: Registry;
  let layout: RepositoryLayout;
  let target: PurgeTarget;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-purge-'));
    store = await openStore(dir);
    reg = new Registry({ store, cache: { ttlMs: 0 } });
    layout = new RepositoryLayout(store);
    // The node's own adapter: removals through the registry, locks honoured.
    target = purgeTarget(reg, layout);
  });
  afterEach(async () => {
    await reg.events.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tags = (repo: string) => layout.listTags(repo);
  const revisions = async (repo: string) => (await layout.listRevisions(repo)).sort();

  it('refuses durations that overflow and filters that are not regexes', () => {
    expect(parseDuration('30d', 'ago')).toBe(30 * DAY);
    expect(() => parseDuration('36501d', 'ago')).toThrow('over 100 years');
    expect(() => parseDuration('999999999d', 'ago')).toThrow();
    expect(() => parseDuration('-1d', 'ago')).toThrow('not a duration');
    expect(() => parseFilter('app:(')).toThrow(/filter app:\(/);
    const f = parseFilter('team/.*:v1\\..*');
    expect(f.repository.test('team/app')).toBe(true);
    expect(f.repository.test('other/team/app')).toBe(false);
    expect(f.tag.test('v1.2')).toBe(true);
    expect(f.tag.test('xv1.2')).toBe(false);
  });

  it('keeps the newest N, honours --ago, and a dry run plans exactly what the run removes', async () => {
    for (let i = 0; i < 6; i++) {
      await pushImage(reg, 'app', `v${i}`, randomBlob(), [randomBlob(1000)]);
      await new Promise((r) => setTimeout(r, 5));
    }
    const c = { filters: [parseFilter('app:v.*')], keep: 2, untagged: true, force: true };
    // Nothing is older than 30 days yet.
    const none = await purge(layout, target, { ...c, agoMs: 30 * DAY, dryRun: true });
    expect(none.totals.tags).toBe(0);
    const later = Date.now() + 40 * DAY;
    const dry = await purge(layout, target, { ...c, agoMs: 30 * DAY, now: later, dryRun: true });
    expect(dry.repositories[0]!.tags.map((t) => t.tag).sort()).toEqual(['v0', 'v1', 'v2', 'v3']);
    expect(dry.totals).toMatchObject({ tags: 4, manifests: 4 });
    expect(await tags('app')).toHaveLength(6);
    const run = await purge(layout, target, { ...c, agoMs: 30 * DAY, now: later, dryRun: false });
    expect(run.repositories[0]).toMatchObject({ tagsDeleted: 4, manifestsDeleted: 4 });
    expect(run.totals).toEqual(dry.totals);
    expect(await tags('app')).toEqual(['v4', 'v5']);
    expect(await revisions('app')).toHaveLength(2);
  });

  it('stops at the rails: over half of a repository, or its last tag, needs force', async () => {
    for (const t of ['a', 'b', 'c']) await pushImage(reg, 'rail', t, randomBlob(), [randomBlob()]);
    await pushImage(reg, 'solo', 'only', randomBlob(), [randomBlob()]);
    const r = await purge(layout, target, {
      filters: [parseFilter('rail:a|b'), parseFilter('solo:.*')],
      dryRun: false,
    });
    expect(r.totals).toMatchObject({ refused: 2, tags: 0 });
    expect(r.repositories.map((p) => p.refused)).toEqual([
      expect.stringContaining('2 of 3 tags of rail, over the 50 % limit'),
      expect.stringContaining('every tag of solo'),
    ]);
    expect(await tags('rail')).toEqual(['a', 'b', 'c']);
    expect(await tags('solo')).toEqual(['only']);
    const forced = await purge(layout, target, {
      filters: [parseFilter('rail:a|b')],
      force: true,
      dryRun: false,
    });
    expect(forced.totals.tags).toBe(2);
    expect(await tags('rail')).toEqual(['c']);
  });

  it('takes an index with its children and its signature whole, and never orphans them', async () => {
    const shared = randomBlob();
    const children = [];
    for (const arch of ['amd64', 'arm64']) {
      const [c, l] = [randomBlob(), randomBlob()];
      await Promise.all([c, l, shared].map((b) => pushBlob(reg, 'multi', b)));
      const bytes = imageManifest(c, [shared, l]);
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
    await reg.manifests.put('multi', 'old', index, OCI_INDEX);
    const sigConfig = blobOf(Buffer.from('{}'));
    const sigLayer = randomBlob();
    await Promise.all([sigConfig, sigLayer].map((b) => pushBlob(reg, 'multi', b)));
    const sig = imageManifest(sigConfig, [sigLayer], {
      subject: { mediaType: OCI_INDEX, digest: sha256(index), size: index.length },
    });
    await reg.manifests.put('multi', sha256(sig), sig, OCI_MANIFEST);
    const keep = await pushImage(reg, 'multi', 'keep', randomBlob(), [shared]);

    // Untagging the index alone (no --untagged) leaves every manifest.
    const c = { filters: [parseFilter('multi:old')], force: true };
    const plain = await purge(layout, target, { ...c, dryRun: true });
    expect(plain.totals).toMatchObject({ tags: 1, manifests: 0 });
    // With --untagged: the index, both children and the signature go, signature first; the
    // kept image and the layer it shares stay.
    const dry = await purge(layout, target, { ...c, untagged: true, dryRun: true });
    const planned = dry.repositories[0]!.manifests.map((m) => m.digest);
    expect(planned[0]).toBe(sha256(sig));
    expect(planned[1]).toBe(sha256(index));
    expect([...planned].sort()).toEqual(
      [sha256(sig), sha256(index), ...children.map((x) => x.digest)].sort(),
    );
    expect(dry.repositories[0]!.bytes).toBeGreaterThan(index.length);
    await purge(layout, target, { ...c, untagged: true, dryRun: false });
    expect(await revisions('multi')).toEqual([keep]);
    expect(await reg.manifests.referrers('multi', sha256(index))).toEqual([]);
    expect(await tags('multi')).toEqual(['keep']);
  });

  it('keeps a signature while its subject lives', async () => {
    const img = await pushImage(reg, 'sig', 'v1', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'sig', 'v2', randomBlob(), [randomBlob()]);
    const sigConfig = blobOf(Buffer.from('{}'));
    await pushBlob(reg, 'sig', sigConfig);
    const sig = imageManifest(sigConfig, [], {
      subject: { mediaType: OCI_MANIFEST, digest: img, size: 1 },
    });
    await reg.manifests.put('sig', sha256(sig), sig, OCI_MANIFEST);
    // Only v2 is purged; v1 lives, so does its signature.
    const r = await purge(layout, target, {
      filters: [parseFilter('sig:v2')],
      untagged: true,
      dryRun: false,
    });
    expect(r.totals).toMatchObject({ tags: 1, manifests: 1 });
    expect((await revisions('sig')).sort()).toEqual([img, sha256(sig)].sort());
  });

  it('leaves a tag a push moved after the plan', async () => {
    await pushImage(reg, 'race', 'a', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'race', 'b', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'race', 'c', randomBlob(), [randomBlob()]);
    const moved: PurgeTarget = {
      deleteTag: async (r, t, d) => {
        // A push moves the tag between the plan and its removal.
        await pushImage(reg, r, t, randomBlob(), [randomBlob()]);
        return target.deleteTag(r, t, d);
      },
      deleteManifest: (r, d) => target.deleteManifest(r, d),
    };
    const r = await purge(layout, moved, {
      filters: [parseFilter('race:a')],
      untagged: true,
      dryRun: false,
    });
    expect(r.repositories[0]).toMatchObject({ tagsDeleted: 0 });
    expect(await tags('race')).toEqual(['a', 'b', 'c']);
  });

  it('skips what a lock keeps, in the plan and in the run', async () => {
    const a = await pushImage(reg, 'locked', 'a', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'locked', 'b', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'locked', 'c', randomBlob(), [randomBlob()]);
    const d = await pushImage(reg, 'locked', 'd', randomBlob(), [randomBlob()]);
    await reg.locks.update('locked', { scope: 'tag', tag: 'a' }, { deleteEnabled: false });
    await reg.locks.update('locked', { scope: 'manifest', digest: d }, { deleteEnabled: false });
    const c = { filters: [parseFilter('locked:a|b|d')], untagged: true, force: true };
    const dry = await purge(layout, target, { ...c, dryRun: true });
    expect(dry.repositories[0]!.tags.map((t) => t.tag)).toEqual(['b']);
    expect(dry.repositories[0]!.locked.map((l) => l.tag ?? l.digest).sort()).toEqual(['a', 'd']);
    expect(dry.totals.locked).toBe(2);
    const run = await purge(layout, target, { ...c, dryRun: false });
    expect(run.repositories[0]).toMatchObject({ tagsDeleted: 1, manifestsDeleted: 1 });
    expect(await tags('locked')).toEqual(['a', 'c', 'd']);
    expect(await revisions('locked')).toContain(a);
  });

  it("--include-locked lifts a tag's and a manifest's own lock and removes them; a repository lock still holds", async () => {
    const a = await pushImage(reg, 'inc', 'a', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'inc', 'b', randomBlob(), [randomBlob()]);
    const d = await pushImage(reg, 'inc', 'd', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'inc', 'e', randomBlob(), [randomBlob()]);
    await reg.locks.update('inc', { scope: 'tag', tag: 'a' }, { deleteEnabled: false });
    await reg.locks.update('inc', { scope: 'manifest', digest: d }, { writeEnabled: false });
    const c = { filters: [parseFilter('inc:a|d')], untagged: true, force: true };
    const dry = await purge(layout, target, { ...c, includeLocked: true, dryRun: true });
    expect(dry.repositories[0]!.tags.map((t) => t.tag).sort()).toEqual(['a', 'd']);
    expect(dry.repositories[0]!.locked).toEqual([]);
    // The dry run changed no lock.
    expect((await reg.locks.fresh('inc')).tags.get('a')?.deleteEnabled).toBe(false);
    const run = await purge(layout, target, { ...c, includeLocked: true, dryRun: false });
    expect(run.repositories[0]).toMatchObject({ tagsDeleted: 2, manifestsDeleted: 2 });
    expect(await tags('inc')).toEqual(['b', 'e']);
    expect(await revisions('inc')).not.toContain(a);
    expect(await revisions('inc')).not.toContain(d);
    // A repository's own lock is never lifted by a purge.
    await pushImage(reg, 'repo-locked', 'x', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'repo-locked', 'y', randomBlob(), [randomBlob()]);
    await reg.locks.update('repo-locked', { scope: 'repository' }, { deleteEnabled: false });
    const held = await purge(layout, target, {
      filters: [parseFilter('repo-locked:x')],
      untagged: true,
      includeLocked: true,
      dryRun: false,
    });
    expect(held.repositories[0]).toMatchObject({ tagsDeleted: 0, manifestsDeleted: 0 });
    expect(await tags('repo-locked')).toEqual(['x', 'y']);
  });

  it('matches filters in linear time: a catastrophic pattern returns at once, back-references are refused', () => {
    const f = parseFilter('(a+)+b:.*');
    expect(f.repository.test(`${'a'.repeat(100_000)}c`)).toBe(false);
    expect(() => parseFilter('(a)\\1:.*')).toThrow(/filter/);
    expect(() => parseFilter(`${'a'.repeat(513)}:.*`)).toThrow(/longer than 512/);
  });

  it('--not-pulled-for keeps what any region pulled lately, and counts a never-pulled image from its push', async () => {
    const pulled = await pushImage(reg, 'usage', 'pulled', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'usage', 'stale', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'usage', 'never', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'usage', 'keep1', randomBlob(), [randomBlob()]);
    await pushImage(reg, 'usage', 'keep2', randomBlob(), [randomBlob()]);
    const now = Date.now() + 200 * DAY;
    const withPulls: PurgeTarget = {
      ...target,
      // A replica pulled `pulled` (by digest) yesterday; `stale` was last pulled 100 days ago.
      lastPulled: async () => ({
        tags: { stale: now - 100 * DAY },
        manifests: { [pulled]: now - DAY },
        unreadable: [],
      }),
    };
    const c = { filters: [parseFilter('usage:pulled|stale|never')], notPulledForMs: 90 * DAY, now };
    const r = await purge(layout, withPulls, { ...c, untagged: true, dryRun: false });
    expect(r.repositories[0]!.tags.map((t) => t.tag).sort()).toEqual(['never', 'stale']);
    expect(await tags('usage')).toEqual(['keep1', 'keep2', 'pulled']);
    // Without every region's records, "not pulled" cannot be told: nothing is removed.
    const unsure: PurgeTarget = {
      ...target,
      lastPulled: async () => ({ tags: {}, manifests: {}, unreadable: ['westeurope'] }),
    };
    const u = await purge(layout, unsure, { ...c, force: true, dryRun: false });
    expect(u.repositories[0]!.refused).toMatch(/pull records of westeurope/);
    expect(await tags('usage')).toEqual(['keep1', 'keep2', 'pulled']);
  });
});
