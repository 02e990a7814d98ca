import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RepositoryFence } from '../../packages/registry/src/domain/repository-fence';
import { Layout, listAllKeys, openStore, type ObjectStore } from '@meridian/storage';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The store fence between a purge on one node and manifest writes on another (ADR 0021), on two
 * store handles over one directory as two nodes have: each side writes its key, then looks for
 * the other's.
 */
describe('repository fence between removers and writers on two nodes', () => {
  let dir: string;
  let stores: ObjectStore[];
  let remover: RepositoryFence;
  let writer: RepositoryFence;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-repo-fence-'));
    stores = [await openStore(dir), await openStore(dir)];
    const opts = { active: () => true, contestBudgetMs: 400, pollMs: 20 };
    remover = new RepositoryFence(stores[0]!, opts);
    writer = new RepositoryFence(stores[1]!, opts);
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a writer waits while a remover holds the repository, then writes', async () => {
    const claim = await remover.claim('team/app');
    expect(claim).toBeDefined();
    let entered = false;
    const entering = writer.enter('team/app').then((leave) => {
      entered = true;
      return leave;
    });
    await sleep(300);
    expect(entered).toBe(false);
    await claim!.release();
    const leave = await entering;
    expect(entered).toBe(true);
    await leave();
    expect(await listAllKeys(stores[0]!, '_fence/')).toEqual([]);
  });

  it('a remover backs off while a writer is in flight, and gives up after its budget', async () => {
    const leave = await writer.enter('team/app');
    expect(await remover.claim('team/app')).toBeUndefined();
    // Nothing of the remover is left behind to hold writers off.
    expect(await listAllKeys(stores[0]!, Layout.fenceRepoClaims('team/app'))).toEqual([]);
    // A writer elsewhere, or in another repository, does not contest it.
    expect(await remover.claim('team/other')).toBeDefined();
    await leave();
    const claim = await remover.claim('team/app');
    expect(claim).toBeDefined();
    await claim!.release();
  });

  it("a dead writer's key stops contesting once stale, and is removed", async () => {
    await writer.enter('team/app'); // never left: the writer died
    const [key] = await listAllKeys(stores[0]!, Layout.fenceRepoWriters('team/app'));
    const old = new Date(Date.now() - 11 * 60_000);
    utimesSync(join(dir, key!), old, old);
    const claim = await remover.claim('team/app');
    expect(claim).toBeDefined();
    await claim!.release();
    expect(await listAllKeys(stores[0]!, '_fence/')).toEqual([]);
  });

  it("a dead remover's claim stops holding writers once stale, and is removed", async () => {
    await remover.claim('team/app'); // never released: the remover died
    const [key] = await listAllKeys(stores[0]!, Layout.fenceRepoClaims('team/app'));
    const old = new Date(Date.now() - 3 * 60_000);
    utimesSync(join(dir, key!), old, old);
    // A writer that would still wait for it gives up (503) within its short wait.
    const impatient = new RepositoryFence(stores[1]!, { active: () => true, waitMs: 500 });
    const leave = await impatient.enter('team/app');
    await leave();
    expect(await listAllKeys(stores[0]!, '_fence/')).toEqual([]);
  });

  it('a writer held past its wait gets a 503 and leaves no key behind', async () => {
    const impatient = new RepositoryFence(stores[1]!, {
      active: () => true,
      waitMs: 200,
      pollMs: 20,
    });
    const claim = await remover.claim('team/app');
    await expect(impatient.enter('team/app')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      status: 503,
    });
    expect(await listAllKeys(stores[0]!, Layout.fenceRepoWriters('team/app'))).toEqual([]);
    await claim!.release();
  });

  it('is inert while the node is alone: no keys, no waiting', async () => {
    const alone = new RepositoryFence(stores[0]!, { active: () => false });
    const claim = await alone.claim('team/app');
    const leave = await alone.enter('team/app');
    await leave();
    await claim!.release();
    expect(await listAllKeys(stores[0]!, '_fence/')).toEqual([]);
  });
});
