import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDigest } from '@meridian/oci';
import { Registry } from '@meridian/registry';
import { RepositoryLayout, openStore, withLatency, type ObjectStore } from '@meridian/storage';
import { deleteRepository } from '../../packages/registry/src/domain/repository-delete';
import { pullImage, pushImage, randomBlob, sha256, imageManifest } from '../gc/gc-helpers';

/**
 * Deleting a repository (`DELETE /acr/v1/{name}`, `az acr repository delete`) while a push into
 * it lands: the push is either deleted with the rest (it landed before the delete read the
 * repository) or it stays whole — a manifest that is there after both pulls byte for byte, its
 * layers still linked. A store with 1 ms of latency per call widens every window.
 */
describe('repository delete racing a push', () => {
  let dir: string;
  let store: ObjectStore;
  let reg: Registry;
  let layout: RepositoryLayout;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-repo-delete-race-'));
    store = withLatency(await openStore(dir), 1);
    reg = new Registry({ store, cache: { ttlMs: 0 } });
    layout = new RepositoryLayout(store);
  });
  afterEach(async () => {
    await reg.events.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never leaves a pushed manifest without its layers', async () => {
    let survived = 0;
    for (let i = 0; i < 30; i++) {
      const repo = `team/app${i}`;
      await pushImage(reg, repo, 'v1', randomBlob(), [randomBlob(), randomBlob()]);
      // The push starts anywhere within the time the delete takes.
      const t0 = Date.now();
      await deleteRepository(reg, repo);
      const span = (Date.now() - t0) * 1.5;
      await pushImage(reg, repo, 'v1', randomBlob(), [randomBlob(), randomBlob()]);
      const [config, layers] = [randomBlob(), [randomBlob(), randomBlob()]];
      const [deleted, pushed] = await Promise.allSettled([
        deleteRepository(reg, repo),
        new Promise((r) => setTimeout(r, Math.random() * span)).then(() =>
          pushImage(reg, repo, 'v2', config, layers),
        ),
      ]);
      expect(deleted.status).toBe('fulfilled');
      const digest = sha256(imageManifest(config, layers));
      if (pushed.status === 'fulfilled' && (await layout.hasRevision(repo, parseDigest(digest)))) {
        survived++;
        for (const b of [config, ...layers])
          expect(await layout.hasLayer(repo, parseDigest(b.digest))).toBe(true);
        await pullImage(reg, repo, digest);
      }
    }
    // The race really happened: some pushes landed after the delete read the repository.
    expect(survived).toBeGreaterThan(0);
  });
});
