import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, withLatency, type ObjectStore } from '@meridian/storage';
import { purgeTarget } from '../../packages/cli/src/gc-wiring';
import { purgeRaceRound } from './purge-race-helpers';

const ROUNDS = Number(process.env.MERIDIAN_PURGE_RACE_ROUNDS ?? 30);

/**
 * Two nodes of one region (ADR 0024): node A runs a purge (as retention does), node B takes the
 * pushes. Their in-process locks cannot see each other; only the store fence keeps them apart.
 * Whatever the interleaving, a push B answered is never undone by A's purge: a tag B moved keeps
 * its new manifest, an index B pushed keeps its children.
 */
describe('purge on one node racing pushes through another node', () => {
  let dir: string;
  let stores: ObjectStore[];
  let a: Registry;
  let b: Registry;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-purge-nodes-'));
    stores = [withLatency(await openStore(dir), 1), withLatency(await openStore(dir), 1)];
    a = new Registry({ store: stores[0]!, cache: { ttlMs: 0 } });
    b = new Registry({ store: stores[1]!, cache: { ttlMs: 0 } });
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

  it(`never undoes a push over ${ROUNDS} rounds`, async () => {
    const layout = new RepositoryLayout(stores[0]!);
    const target = purgeTarget(a, layout);
    let movedRaces = 0;
    let indexRaces = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const r = await purgeRaceRound({ repo: `race${i}`, pusher: b, target, layout });
      if (r.moved) movedRaces++;
      if (r.indexed) indexRaces++;
    }
    expect(movedRaces).toBeGreaterThan(0);
    expect(indexRaces).toBeGreaterThan(0);
  });
});
