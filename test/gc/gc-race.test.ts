import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GarbageCollector } from '@meridian/lifecycle';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { ageAll, pullImage, pushBlob, pushImage, randomBlob, sleep } from './gc-helpers';

const HOUR = 3_600_000;
const GRACE = 10 * 60_000;
const ITERATIONS = Number(process.env.MERIDIAN_GC_RACE_ITERATIONS ?? 150);

/**
 * Pushes that reuse layers of an image being deleted, concurrently with GC runs whose every
 * unlink and delete is delayed by a few milliseconds (to widen the race windows): every image
 * pushed must pull back byte for byte, and GC must still free what nothing uses.
 */
describe('GC racing pushes that reuse layers of deleted images', () => {
  let dir: string;
  let store: ObjectStore;
  let reg: Registry;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-gc-race-'));
    store = await openStore(dir);
    reg = new Registry({ store, gcMinGraceMs: GRACE, cache: { ttlMs: 0 } });
  });
  afterEach(async () => {
    await reg.events.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`loses no layer over ${ITERATIONS} iterations`, async () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const gc = new GarbageCollector({
      region: 'eastus',
      store,
      role: 'primary',
      guard: reg.guard,
      hooks: {
        beforeUnlink: () => sleep(rand(4)),
        beforeDelete: () => sleep(rand(4)),
      },
    });
    const layout = new RepositoryLayout(store);
    let conflicts = 0;
    let freed = 0;
    const pushed: { repo: string; tag: string }[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const repo = `race/r${i % 5}`;
      const [shared, unique, c1, c2, fresh] = [
        randomBlob(256),
        randomBlob(128),
        randomBlob(),
        randomBlob(),
        randomBlob(),
      ];
      const old = await pushImage(reg, repo, `old-${i}`, c1, [shared, unique]);
      await reg.manifests.delete(repo, old);
      await ageAll(dir, HOUR);
      const [run] = await Promise.all([
        gc.run({ graceMs: GRACE }),
        (async () => {
          await sleep(rand(6));
          if (i % 3 === 0) {
            // A push to another repository that mounts the old layer from this one.
            const target = `race/m${i % 4}`;
            await reg.uploads
              .mountOrCreate(target, shared.digest, repo)
              .then((r) => ('mounted' in r ? undefined : pushBlob(reg, target, shared)));
            await pushImage(reg, target, `new-${i}`, c2, [shared, fresh]);
            pushed.push({ repo: target, tag: `new-${i}` });
          } else {
            // HEAD the old layer (it is there: skip it), then push the rest and the manifest.
            await pushImage(reg, repo, `new-${i}`, c2, [shared, fresh]);
            pushed.push({ repo, tag: `new-${i}` });
          }
        })(),
      ]);
      conflicts += run.conflicts;
      freed += run.blobsDeleted;
      // The image pushed during the run pulls back byte for byte...
      const latest = pushed.at(-1)!;
      await pullImage(reg, latest.repo, latest.tag);
      // ...and the previous one, which the run could have collected from under, still does.
      if (pushed.length > 1) await pullImage(reg, pushed.at(-2)!.repo, pushed.at(-2)!.tag);
      // Then it is deleted too, so the store stays small and the next run has work to do.
      if (pushed.length > 1) {
        const prev = pushed.at(-2)!;
        await reg.manifests.delete(
          prev.repo,
          (await reg.manifests.get(prev.repo, prev.tag)).digest,
        );
      }
    }
    await pullImage(reg, pushed.at(-1)!.repo, pushed.at(-1)!.tag);
    const final = await gc.run({ graceMs: GRACE });
    freed += final.blobsDeleted;
    await pullImage(reg, pushed.at(-1)!.repo, pushed.at(-1)!.tag);
    // Every deleted image's own bytes were freed: its config, unique layer and manifest.
    expect(freed).toBeGreaterThanOrEqual(ITERATIONS * 3);
    const left = await layout.listBlobs();
    expect(left.length).toBeLessThanOrEqual(12);
    // The race windows were really hit: candidates were rescued at the moment of deletion.
    expect(conflicts).toBeGreaterThan(0);
  });
});
