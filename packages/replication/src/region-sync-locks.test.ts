import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Layout,
  RepositoryLayout,
  openStore,
  type LockRecord,
  type LockTarget,
  type ObjectStore,
} from '@meridian/storage';
import { localMutex } from './local-mutex';
import { RegionSync } from './region-sync';

const record = (seq: number, writeEnabled: boolean): LockRecord => ({
  deleteEnabled: writeEnabled,
  writeEnabled,
  readEnabled: true,
  listEnabled: true,
  seq,
  updatedAt: new Date().toISOString(),
});

describe('RegionSync of lock records', () => {
  let dir: string;
  let primary: ObjectStore;
  let region: ObjectStore;
  const tag: LockTarget = { scope: 'tag', tag: 'v1' };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-lock-sync-'));
    primary = await openStore(join(dir, 'p'));
    region = await openStore(join(dir, 'r'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('copies a newer record and never an older one', async () => {
    const p = new RepositoryLayout(primary);
    const r = new RepositoryLayout(region);
    const sync = new RegionSync('r', primary, region);
    await p.writeLock('app', tag, record(10, false));
    await sync.syncLock('app', 'tag=v1');
    expect((await r.readLock('app', tag))?.writeEnabled).toBe(false);
    // The region already holds a newer record (the unlock): a stale primary read cannot win.
    await r.writeLock('app', tag, record(20, true));
    await sync.syncLock('app', 'tag=v1');
    expect(await r.readLock('app', tag)).toMatchObject({ seq: 20, writeEnabled: true });
  });

  it('keeps the unlock when a job that read the lock finishes after the job that read the unlock', async () => {
    const p = new RepositoryLayout(primary);
    await p.writeLock('app', tag, record(10, false));
    // The first job's read of the primary is held until the unlock is committed there.
    let release!: () => void;
    const held = new Promise<void>((res) => (release = res));
    let first = true;
    const key = Layout.lock('app', tag);
    const slowPrimary = new Proxy(primary, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'getBytes' || typeof v !== 'function') return v;
        return async (k: string, ...rest: unknown[]) => {
          const read = v as (...a: unknown[]) => Promise<Buffer>;
          const bytes = await read.apply(target, [k, ...rest]);
          if (k === key && first) {
            first = false;
            await held;
          }
          return bytes;
        };
      },
    });
    const mutex = localMutex();
    const late = new RegionSync('r', slowPrimary, region, mutex).syncLock('app', 'tag=v1');
    await new Promise((res) => setTimeout(res, 20));
    await p.writeLock('app', tag, record(20, true));
    const prompt = new RegionSync('r', primary, region, mutex).syncLock('app', 'tag=v1');
    release();
    await Promise.all([late, prompt]);
    expect(await new RepositoryLayout(region).readLock('app', tag)).toMatchObject({
      seq: 20,
      writeEnabled: true,
    });
  });

  it('drops a record the primary does not hold, and refuses a malformed lock ref', async () => {
    const r = new RepositoryLayout(region);
    await r.writeLock('app', { scope: 'repository' }, record(5, false));
    const sync = new RegionSync('r', primary, region);
    await sync.syncLock('app', 'repository');
    expect(await r.readLock('app', { scope: 'repository' })).toBeUndefined();
    await expect(sync.syncLock('app', 'bogus')).rejects.toThrow('not a lock');
  });
});
