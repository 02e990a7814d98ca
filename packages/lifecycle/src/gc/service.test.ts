import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type ObjectStore } from '@meridian/storage';
import { GarbageCollector } from './collector';
import { GcRequestError, GcService } from './service';

describe('GcService without Redis', () => {
  let dir: string;
  let store: ObjectStore;
  let service: GcService;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-gc-service-'));
    store = await openStore(dir);
    service = new GcService({
      region: 'eastus',
      regions: ['eastus', 'westeurope'],
      collector: new GarbageCollector({ region: 'eastus', store, role: 'primary' }),
      bullPrefix: '',
      graceMs: 86_400_000,
      minGraceMs: 3_600_000,
    });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs its own region with the configured grace', async () => {
    const r = await service.run({ dryRun: true });
    expect(r).toMatchObject({ region: 'eastus', dryRun: true, graceSeconds: 86_400 });
  });

  it('refuses a grace below the minimum, an unknown region, and a replica region without Redis', async () => {
    await expect(service.run({ graceSeconds: 60 })).rejects.toThrow(
      new GcRequestError('grace 60 s is below gc.minGraceSeconds (3600 s)'),
    );
    await expect(service.run({ region: 'mars' })).rejects.toThrow('unknown region: mars');
    await expect(service.run({ region: 'westeurope' })).rejects.toThrow(/need Redis/);
  });
});
