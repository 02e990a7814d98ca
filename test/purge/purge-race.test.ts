import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFilter, purge } from '@meridian/lifecycle';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, withLatency, type ObjectStore } from '@meridian/storage';
import { purgeTarget } from '../../packages/cli/src/gc-wiring';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  imageManifest,
  pushBlob,
  pushImage,
  randomBlob,
  sha256,
} from '../gc/gc-helpers';

/**
 * Purge (and so retention, which runs on it) racing pushes: whatever the interleaving, a push
 * that succeeded is never undone — a tag moved during the purge keeps its new manifest, and an
 * index pushed during the purge keeps its children. A store with 1 ms of latency per call
 * widens every window between the re-check and the removal.
 */
describe('purge racing pushes', () => {
  let dir: string;
  let store: ObjectStore;
  let reg: Registry;
  let layout: RepositoryLayout;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-purge-race-'));
    store = withLatency(await openStore(dir), 1);
    reg = new Registry({ store, cache: { ttlMs: 1000 } });
    layout = new RepositoryLayout(store);
  });
  afterEach(async () => {
    await reg.events.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never deletes a tag a push just moved, nor a child an index just named', async () => {
    const target = purgeTarget(reg, layout);
    let movedRaces = 0;
    let indexRaces = 0;
    for (let i = 0; i < 30; i++) {
      const repo = `race${i}`;
      await pushImage(reg, repo, 'keep', randomBlob(), [randomBlob()]);
      // A tag the purge plans to delete, moved by a push at the same time.
      await pushImage(reg, repo, 'old', randomBlob(), [randomBlob()]);
      const [cfg, layer] = [randomBlob(), randomBlob()];
      await Promise.all([cfg, layer].map((b) => pushBlob(reg, repo, b)));
      const moved = imageManifest(cfg, [layer]);
      // An untagged manifest the purge plans to delete, named by an index pushed at the same time.
      const [ccfg, clayer] = [randomBlob(), randomBlob()];
      await Promise.all([ccfg, clayer].map((b) => pushBlob(reg, repo, b)));
      const child = imageManifest(ccfg, [clayer]);
      await reg.manifests.put(repo, sha256(child), child, OCI_MANIFEST);
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(child), size: child.length }],
        }),
      );
      // The pushes start anywhere within the time a purge of this repository takes.
      const t0 = Date.now();
      await purge(layout, target, {
        filters: [parseFilter(`${repo}:old`)],
        untagged: true,
        force: true,
        dryRun: true,
      });
      const span = (Date.now() - t0) * 1.5;
      const delay = () => new Promise((r) => setTimeout(r, Math.random() * span));
      const [res, pushTag, pushIndex] = await Promise.allSettled([
        purge(layout, target, {
          filters: [parseFilter(`${repo}:old`)],
          untagged: true,
          force: true,
          dryRun: false,
        }),
        delay().then(() => reg.manifests.put(repo, 'old', moved, OCI_MANIFEST)),
        delay().then(() => reg.manifests.put(repo, 'idx', index, OCI_INDEX)),
      ]);
      // The push that moved the tag succeeded. When the purge planned the tag at its old
      // manifest, the push wins: the tag is there and points at what it pushed. (A push that
      // landed before the plan moved the tag the filter names; the purge then takes it whole.)
      expect(pushTag.status).toBe('fulfilled');
      expect(res.status).toBe('fulfilled');
      const planned = res.status === 'fulfilled' ? res.value.repositories[0]?.tags : undefined;
      if (planned?.some((t) => t.tag === 'old' && t.digest !== sha256(moved))) {
        movedRaces++;
        expect((await layout.readTag(repo, 'old'))?.digest).toBe(sha256(moved));
        expect((await reg.manifests.get(repo, 'old')).bytes.equals(moved)).toBe(true);
      }
      // An index push that succeeded still has its child; one that failed named a child
      // already gone (the client pushes it again), and left no tag behind.
      if (pushIndex.status === 'fulfilled') {
        indexRaces++;
        expect((await reg.manifests.get(repo, sha256(child))).bytes.equals(child)).toBe(true);
      } else {
        expect(await layout.readTag(repo, 'idx')).toBeUndefined();
      }
    }
    expect(movedRaces).toBeGreaterThan(0);
    // Both outcomes of the index race are legitimate; most pushes land while the purge plans.
    expect(indexRaces).toBeGreaterThan(0);
  });
});
