import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { openStore, type ObjectStore } from '@meridian/storage';
import { ImportJobStore, type ImportJob } from './import-job-store';
import { emptyProgress } from './importer';

describe('ImportJobStore', () => {
  let dir: string;
  let store: ObjectStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'import-jobs-'));
    store = await openStore(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const job = (n: number): ImportJob => ({
    id: randomUUID(),
    status: 'succeeded',
    source: `registry.example/lib/app:v${n}`,
    targets: [`lib/app:v${n}`],
    force: false,
    dryRun: false,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
    updatedAt: new Date().toISOString(),
    progress: emptyProgress(),
  });
  const tick = () => new Promise((r) => setTimeout(r, 15));

  it('keeps each job by id, lists the newest first and never answers for a malformed id', async () => {
    const jobs = new ImportJobStore(store);
    const made = [job(1), job(2), job(3)];
    // "Most recently written" is the store's modification time: apart by more than its
    // granularity (writes within one tick may carry the same time).
    for (const j of made) {
      await jobs.put(j);
      await tick();
    }
    expect(await jobs.get(made[1]!.id)).toEqual(made[1]);
    expect(await jobs.get('../rules/x')).toBeUndefined();
    expect((await jobs.recent(2)).map((j) => j.source)).toEqual([
      'registry.example/lib/app:v3',
      'registry.example/lib/app:v2',
    ]);
  });

  it('bounds the history by count and by age, sparing records written just now', async () => {
    const jobs = new ImportJobStore(store);
    const made = [job(1), job(2), job(3), job(4), job(5)];
    for (const j of made) {
      await jobs.put(j);
      await tick();
    }
    const now = Date.now() + 1000;
    expect(await jobs.trim(0, 86_400_000, 60_000, now)).toBe(0); // all written within a minute
    expect(await jobs.trim(3, 86_400_000, 0, now)).toBe(2);
    expect((await jobs.recent(10)).map((j) => j.id).sort()).toEqual(
      made
        .slice(2)
        .map((j) => j.id)
        .sort(),
    );
    expect(await jobs.trim(10, 500, 0, now + 10_000)).toBe(3);
    expect(await jobs.recent(10)).toEqual([]);
  });
});
