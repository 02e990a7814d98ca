import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GarbageCollector } from '@meridian/lifecycle';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { ageAll, pullImage, pushBlob, pushImage, randomBlob, sleep } from './gc-helpers';

const HOUR = 3_600_000;
const GRACE = 10 * 60_000;
const ITERATIONS = Number(process.env.MERIDIAN_GC_RACE_ITERATIONS ?? 60);

/**
 * Two nodes of one region (ADR 0024): node A collects, node B pushes images that reuse layers
 * of an image being deleted. Their in-process locks cannot see each other; only the store fence
 * keeps them apart. Every unlink and delete is delayed a few milliseconds to widen the windows.
 * Every image B pushed must pull back byte for byte (through either node), and GC must still
 * free what nothing uses.
 */
describe('GC on one node racing pushes through another node', () => {
  let dir: string;
  let stores: ObjectStore[];
  let a: Registry;
  let b: Registry;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-gc-nodes-'));
    stores = [await openStore(dir), await openStore(dir)];
    a = new Registry({ store: stores[0]!, gcMinGraceMs: GRACE, cache: { ttlMs: 0 } });
    b = new Registry({ store: stores[1]!, gcMinGraceMs: GRACE, cache: { ttlMs: 0 } });
    // Both know they share the region (RegionNodes would say so).
    a.setExclusive(() => false);
    b.setExclusive(() => false);
  });
  afterEach(async () => {
    await a.events.close();
    await b.events.close();
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`loses no layer over ${ITERATIONS} iterations`, async () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const gc = new GarbageCollector({
      region: 'eastus',
      store: stores[0]!,
      role: 'primary',
      guard: a.guard,
      hooks: {
        beforeUnlink: () => sleep(rand(4)),
        beforeDelete: () => sleep(rand(4)),
      },
    });
    const layout = new RepositoryLayout(stores[0]!);
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
      const old = await pushImage(b, repo, `old-${i}`, c1, [shared, unique]);
      await b.manifests.delete(repo, old);
      await ageAll(dir, HOUR);
      const [run] = await Promise.all([
        gc.run({ graceMs: GRACE }),
        (async () => {
          await sleep(rand(6));
          if (i % 3 === 0) {
            // Through B: mount the old layer into another repository, then push there.
            const target = `race/m${i % 4}`;
            await b.uploads
              .mountOrCreate(target, shared.digest, repo)
              .then((r) => ('mounted' in r ? undefined : pushBlob(b, target, shared)));
            await pushImage(b, target, `new-${i}`, c2, [shared, fresh]);
            pushed.push({ repo: target, tag: `new-${i}` });
          } else {
            // Through B: HEAD the old layer (there: skip it), push the rest and the manifest.
            await pushImage(b, repo, `new-${i}`, c2, [shared, fresh]);
            pushed.push({ repo, tag: `new-${i}` });
          }
        })(),
      ]);
      conflicts += run.conflicts;
      freed += run.blobsDeleted;
      const latest = pushed.at(-1)!;
      await pullImage(b, latest.repo, latest.tag);
      await pullImage(a, latest.repo, latest.tag);
      if (pushed.length > 1) await pullImage(a, pushed.at(-2)!.repo, pushed.at(-2)!.tag);
      if (pushed.length > 1) {
        const prev = pushed.at(-2)!;
        await b.manifests.delete(prev.repo, (await b.manifests.get(prev.repo, prev.tag)).digest);
      }
    }
    await pullImage(a, pushed.at(-1)!.repo, pushed.at(-1)!.tag);
    // Activity in the last minutes contests a claim; past it, GC frees what nothing uses.
    await ageAll(dir, HOUR);
    const final = await gc.run({ graceMs: GRACE });
    freed += final.blobsDeleted;
    await pullImage(b, pushed.at(-1)!.repo, pushed.at(-1)!.tag);
    expect(freed).toBeGreaterThanOrEqual(ITERATIONS * 3);
    const left = await layout.listBlobs();
    expect(left.length).toBeLessThanOrEqual(12);
    // The fence was really exercised: B's stamps contested A's claims.
    expect(conflicts).toBeGreaterThan(0);
  });

  it('a writer waits out a live claim, and its stamp contests the next one', async () => {
    const blob = randomBlob(100);
    await pushBlob(b, 'wait/here', blob);
    await ageAll(dir, HOUR);
    const { parseDigest } = await import('@meridian/oci');
    const d = parseDigest(blob.digest);
    const claim = await a.guard.claim(d);
    expect(claim.contested).toBe(false); // nobody referenced it lately
    let entered = false;
    const writer = b.guard.shared([`repo:wait/here`, `blob:${blob.digest}`], async () => {
      entered = true;
    });
    await sleep(300);
    expect(entered).toBe(false); // held off by the live claim
    await claim.release();
    await writer;
    expect(entered).toBe(true);
    const next = await a.guard.claim(d);
    expect(next.contested).toBe(true); // the writer's stamp is fresh
    await next.release();
  });
});
