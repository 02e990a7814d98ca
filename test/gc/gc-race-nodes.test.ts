import type { Registry } from '@meridian/registry';
import { RepositoryLayout, type ObjectStore } from '@meridian/storage';
import { twoNodes, type TwoNodes } from '../helpers/two-nodes';
import { ageAll, pushBlob, raceRounds, randomBlob, sleep } from './gc-helpers';

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
  let nodes: TwoNodes;
  let dir: string;
  let stores: ObjectStore[];
  let a: Registry;
  let b: Registry;

  beforeEach(async () => {
    nodes = await twoNodes('gc-nodes', { registry: { gcMinGraceMs: GRACE } });
    ({ dir, stores, a, b } = nodes);
  });
  afterEach(async () => {
    await nodes.close();
  });

  it(`loses no layer over ${ITERATIONS} iterations`, async () => {
    // A collects; B pushes; every image is read back through both.
    const { conflicts, freed } = await raceRounds({
      dir,
      store: stores[0]!,
      writer: b,
      readers: [b, a],
      guard: a.guard,
      iterations: ITERATIONS,
      graceMs: GRACE,
      seed: 7,
    });
    expect(freed).toBeGreaterThanOrEqual(ITERATIONS * 3);
    const left = await new RepositoryLayout(stores[0]!).listBlobs();
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
