import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageRecords, openStore, type ObjectStore } from '@meridian/storage';
import { PullRecorder } from './pull-recorder';
import { UsageReader } from './usage-reader';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

describe('PullRecorder', () => {
  let dir: string;
  let store: ObjectStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-pulls-'));
    store = await openStore(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts pulls in memory and merges them into the region record at each flush', async () => {
    const r = new PullRecorder(store, { flushIntervalMs: 3_600_000 });
    r.record('app', 'v1', D1, 1000);
    r.record('app', 'v1', D1, 3000);
    r.record('app', undefined, D2, 2000);
    // Nothing is written until a flush.
    expect(await new UsageRecords(store).read('app')).toEqual({ manifests: {}, tags: {} });
    await r.flush();
    r.record('app', 'v1', D1, 2500);
    await r.close();
    expect(await new UsageRecords(store).read('app')).toEqual({
      manifests: { [D1]: { lastPulledAt: 3000, count: 3 }, [D2]: { lastPulledAt: 2000, count: 1 } },
      tags: { v1: { lastPulledAt: 3000, count: 3 } },
    });
    expect(await new UsageRecords(store).repositories()).toEqual(['app']);
  });

  it('keeps the counts of a flush that failed for the next one', async () => {
    const failing = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'put') return () => Promise.reject(new Error('storage down'));
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const errors: unknown[] = [];
    const down = new PullRecorder(failing, {
      flushIntervalMs: 3_600_000,
      onError: (e) => errors.push(e),
    });
    down.record('team/app', 'v1', D1, 1000);
    await down.flush();
    expect(errors).toHaveLength(1);
    down.record('team/app', 'v1', D1, 4000);
    // The same pending counts, written once storage answers again.
    (down as unknown as { records: UsageRecords }).records = new UsageRecords(store);
    await down.close();
    expect((await new UsageRecords(store).read('team/app')).tags.v1).toEqual({
      lastPulledAt: 4000,
      count: 2,
    });
  });

  it('aggregates every region: latest pull anywhere, total count, and each region', async () => {
    const other = await openStore(join(dir, 'other'));
    await new UsageRecords(store).add('app', {
      manifests: { [D1]: { lastPulledAt: 5000, count: 2 } },
      tags: { v1: { lastPulledAt: 5000, count: 2 } },
    });
    await new UsageRecords(other).add('app', {
      manifests: { [D1]: { lastPulledAt: 9000, count: 1 } },
      tags: {},
    });
    const u = await new UsageReader([
      { name: 'eastus', store },
      { name: 'westeurope', store: other },
    ]).repository('app');
    expect(u.manifests[D1]).toEqual({
      lastPulledAt: 9000,
      count: 3,
      regions: {
        eastus: { lastPulledAt: 5000, count: 2 },
        westeurope: { lastPulledAt: 9000, count: 1 },
      },
    });
    expect(u.tags.v1?.regions).toEqual({ eastus: { lastPulledAt: 5000, count: 2 } });
    await other.close();
  });
});
