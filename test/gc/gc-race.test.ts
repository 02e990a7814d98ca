import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import { raceRounds } from './gc-helpers';

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
    const { conflicts, freed } = await raceRounds({
      dir,
      store,
      writer: reg,
      readers: [reg],
      guard: reg.guard,
      iterations: ITERATIONS,
      graceMs: GRACE,
      seed: 42,
    });
    // Every deleted image's own bytes were freed: its config, unique layer and manifest.
    expect(freed).toBeGreaterThanOrEqual(ITERATIONS * 3);
    const left = await new RepositoryLayout(store).listBlobs();
    expect(left.length).toBeLessThanOrEqual(12);
    // The race windows were really hit: candidates were rescued at the moment of deletion.
    expect(conflicts).toBeGreaterThan(0);
  });
});
