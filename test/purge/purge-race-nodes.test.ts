import { RepositoryLayout } from '@meridian/storage';
import { purgeTarget } from '../../packages/cli/src/gc-wiring';
import { twoNodes, type TwoNodes } from '../helpers/two-nodes';
import { purgeRaceRound } from './purge-race-helpers';

const ROUNDS = Number(process.env.MERIDIAN_PURGE_RACE_ROUNDS ?? 30);

/**
 * Two nodes of one region (ADR 0024): node A runs a purge (as retention does), node B takes the
 * pushes. Their in-process locks cannot see each other; only the store fence keeps them apart.
 * Whatever the interleaving, a push B answered is never undone by A's purge: a tag B moved keeps
 * its new manifest, an index B pushed keeps its children. A store with 1 ms of latency per call
 * widens every window.
 */
describe('purge on one node racing pushes through another node', () => {
  let nodes: TwoNodes;

  beforeEach(async () => {
    nodes = await twoNodes('purge-nodes', { latencyMs: 1 });
  });
  afterEach(async () => {
    await nodes.close();
  });

  it(`never undoes a push over ${ROUNDS} rounds`, async () => {
    const layout = new RepositoryLayout(nodes.stores[0]);
    const target = purgeTarget(nodes.a, layout);
    let movedRaces = 0;
    let indexRaces = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const r = await purgeRaceRound({ repo: `race${i}`, pusher: nodes.b, target, layout });
      if (r.moved) movedRaces++;
      if (r.indexed) indexRaces++;
    }
    expect(movedRaces).toBeGreaterThan(0);
    expect(indexRaces).toBeGreaterThan(0);
  });
});
