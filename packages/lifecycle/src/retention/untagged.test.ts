import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type ObjectStore } from '@meridian/storage';
import { attachUntaggedRetention, UntaggedRetention, type UntaggingEvent } from './untagged';

const DAY = 86_400_000;
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

describe('UntaggedRetention', () => {
  let dir: string;
  let store: ObjectStore;
  let now: number;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-untagged-'));
    store = await openStore(dir);
    now = Date.parse('2026-12-01T00:00:00Z');
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('schedules only untaggings after the policy was enabled, due `days` later', async () => {
    const r = new UntaggedRetention(store, () => now);
    expect(await r.noteUntagged('app', D1, now)).toBe(false); // off
    await r.setPolicy({ enabled: true, days: 7 });
    expect(await r.noteUntagged('app', D1, now - 1)).toBe(false); // before enabling
    expect(await r.noteUntagged('app', D1, now + 1000)).toBe(true);
    expect((await r.due(now + 6 * DAY)).size).toBe(0);
    expect([...(await r.due(now + 8 * DAY)).get('app')!]).toEqual([D1]);
    // The moment survives a restart, and stays while the policy stays on (days may change).
    now += DAY;
    const again = new UntaggedRetention(store, () => now);
    const p = await again.setPolicy({ enabled: true, days: 1 });
    expect(p.enabledAt).toBe('2026-12-01T00:00:00.000Z');
    expect([...(await again.due(now + DAY)).get('app')!]).toEqual([D1]);
    // Off, then on again: a new moment; nothing is due while off.
    await again.setPolicy({ enabled: false, days: 1 });
    expect((await again.due(now + 100 * DAY)).size).toBe(0);
    expect((await again.setPolicy({ enabled: true, days: 1 })).enabledAt).toBe(
      new Date(now).toISOString(),
    );
    await expect(again.setPolicy({ enabled: true, days: 366 })).rejects.toThrow(/0 to 365/);
  });

  it('keeps the latest untagging when an event comes again, and forgets on demand', async () => {
    const r = new UntaggedRetention(store, () => now);
    await r.setPolicy({ enabled: true, days: 1 });
    await r.noteUntagged('team/app', D1, now + 5 * DAY);
    await r.noteUntagged('team/app', D1, now + 1000); // a redelivered older event
    expect((await r.scheduled())[0]).toMatchObject({
      repository: 'team/app',
      digest: D1,
      dueAt: new Date(now + 6 * DAY).toISOString(),
    });
    await r.forget('team/app', D1);
    await r.forget('team/app', D2); // not there: no error
    expect(await r.scheduled()).toEqual([]);
  });

  it('reads what a tag left from tag moves and deletes, and nothing else', async () => {
    const r = new UntaggedRetention(store, () => now);
    await r.setPolicy({ enabled: true, days: 0 });
    let deliver: ((e: UntaggingEvent) => Promise<void>) | undefined;
    await attachUntaggedRetention(
      {
        attach: (sub) => {
          expect(sub.name).toBe('retention');
          deliver = sub.deliver;
          return Promise.resolve(async () => {});
        },
      },
      r,
    );
    const time = new Date(now + 1000).toISOString();
    await deliver!({ type: 'tagMoved', repository: 'a', time, previous: D1 });
    await deliver!({ type: 'tagMoved', repository: 'a', time }); // a new tag: nothing left
    await deliver!({ type: 'tagDeleted', repository: 'b', time, digest: D2 });
    await deliver!({ type: 'manifestDeleted', repository: 'c', time, digest: D1 });
    expect((await r.scheduled()).map((x) => `${x.repository}@${x.digest}`).sort()).toEqual([
      `a@${D1}`,
      `b@${D2}`,
    ]);
  });
});
