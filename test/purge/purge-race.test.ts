import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, withLatency, type ObjectStore } from '@meridian/storage';
import { purgeTarget } from '../../packages/cli/src/gc-wiring';
import { purgeRaceRound } from './purge-race-helpers';

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
      const r = await purgeRaceRound({ repo: `race${i}`, pusher: reg, target, layout });
      if (r.moved) movedRaces++;
      if (r.indexed) indexRaces++;
    }
    expect(movedRaces).toBeGreaterThan(0);
    // Both outcomes of the index race are legitimate; most pushes land while the purge plans.
    expect(indexRaces).toBeGreaterThan(0);
  });
});
