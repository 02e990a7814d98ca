import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GarbageCollector, attachGcCandidates } from '@meridian/lifecycle';
import { parseDigest } from '@meridian/oci';
import { Registry } from '@meridian/registry';
import { Layout, RepositoryLayout, openStore } from '@meridian/storage';
import { ageAll, pullImage, pushImage, randomBlob, sleep } from './gc-helpers';

const CHILD = resolve(__dirname, 'crash-child.js');
const DIST = resolve(__dirname, '../../packages/lifecycle/dist/index.js');

/**
 * A real `SIGKILL` of a process running GC, before each unlink and each delete of its run (and
 * so after each one too), full and incremental: the next run finishes the job, and nothing
 * reachable is lost at any point.
 */
describe('GC killed with SIGKILL at each step', () => {
  beforeAll(() => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run pnpm build first`);
  });

  for (const mode of ['full', 'incremental'] as const)
    for (const step of ['unlink', 'delete'] as const)
      it(`${mode} run, killed before each ${step}`, async () => {
        // The deleted image leaves 2 links (config, layer) and 3 blobs (with its manifest).
        const steps = step === 'unlink' ? 2 : 3;
        for (let at = 0; at <= steps; at++) {
          const dir = mkdtempSync(join(tmpdir(), 'meridian-gc-crash-'));
          const store = await openStore(dir);
          const reg = new Registry({ store, gcMinGraceMs: 600_000, cache: { ttlMs: 0 } });
          const detach = await attachGcCandidates(reg, store);
          try {
            const keep = randomBlob();
            const [c, l] = [randomBlob(), randomBlob()];
            const old = await pushImage(reg, 'app', 'old', c, [l, keep]);
            await pushImage(reg, 'app', 'new', randomBlob(), [keep]);
            await reg.manifests.delete('app', old);
            for (let i = 0; i < 100; i++) {
              if ((await store.list(Layout.gcCandidatesRoot)).objects.length > 0) break;
              await sleep(20);
            }
            await ageAll(dir, 3_600_000);
            const child = spawnSync(process.execPath, [CHILD, dir, mode, step, String(at)], {
              encoding: 'utf8',
              timeout: 60_000,
            });
            if (at < steps) expect(child.signal).toBe('SIGKILL');
            else expect(child.stdout).toContain('finished');
            // Whatever the crash left, the surviving image pulls.
            await pullImage(reg, 'app', 'new');
            const next = await new GarbageCollector({
              region: 'eastus',
              store,
              role: 'primary',
              guard: reg.guard,
            }).run({ graceMs: 600_000, mode });
            expect(next.conflicts).toBe(0);
            const layout = new RepositoryLayout(store);
            for (const d of [c.digest, l.digest, old])
              expect(await layout.hasBlob(parseDigest(d))).toBe(false);
            await pullImage(reg, 'app', 'new');
            if (mode === 'incremental') {
              // Notes of the deleted image are handled; what remains is the next run's to look at.
              const again = await new GarbageCollector({
                region: 'eastus',
                store,
                role: 'primary',
              }).run({
                graceMs: 600_000,
                mode,
              });
              expect(again).toMatchObject({ blobsDeleted: 0, linksRemoved: 0 });
            }
          } finally {
            await detach();
            await reg.events.close();
            await store.close();
            rmSync(dir, { recursive: true, force: true });
          }
        }
      });
});
