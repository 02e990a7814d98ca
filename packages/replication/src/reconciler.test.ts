import type { RepositoryInventory } from './inventory';
import { diff } from './reconciler';

// The reconciler's diff on hand-built inventories (inventory.test.ts reads them from fs stores).

const inv = (p: {
  tags?: Record<string, string>;
  revisions?: string[];
  layers?: string[];
  referrers?: string[];
  locks?: Record<string, number>;
}): RepositoryInventory => ({
  tags: new Map(Object.entries(p.tags ?? {})),
  revisions: new Set(p.revisions),
  layers: new Set(p.layers),
  referrers: new Set(p.referrers),
  locks: new Map(Object.entries(p.locks ?? {})),
});

/** Order is not part of the contract: every difference is queued, in any order. */
const sorted = <T>(xs: T[]): T[] =>
  [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

const [m1, m2, sig, l1, l2] = ['m1', 'm2', 'sig', 'l1', 'l2'].map((s) => s.padEnd(64, '0'));

describe('reconciler diff', () => {
  it('finds nothing between equal inventories, empty or not', () => {
    expect(diff('app', inv({}), inv({}))).toEqual([]);
    const full = {
      tags: { v1: `sha256:${m1}@1` },
      revisions: [m1!, sig!],
      layers: [l1!],
      referrers: [sig!],
    };
    expect(diff('app', inv(full), inv(full))).toEqual([]);
  });

  it('compares tag records by value: digest and sequence both count', () => {
    const p = inv({
      tags: { same: `sha256:${m1}@1`, seq: `sha256:${m1}@2`, dig: `sha256:${m2}@1` },
    });
    const r = inv({
      tags: { same: `sha256:${m1}@1`, seq: `sha256:${m1}@1`, dig: `sha256:${m1}@1` },
    });
    expect(sorted(diff('app', p, r).map((d) => d.target))).toEqual(
      sorted([
        { kind: 'tag', repository: 'app', tag: 'seq' },
        { kind: 'tag', repository: 'app', tag: 'dig' },
      ]),
    );
  });

  it('names a tag, manifest or blob present on one side only, whichever side it is', () => {
    const p = inv({ tags: { new: `sha256:${m1}@1` }, revisions: [m1!], layers: [l1!] });
    const r = inv({ tags: { gone: `sha256:${m2}@1` }, revisions: [m2!], layers: [l2!] });
    expect(sorted(diff('team/app', p, r))).toEqual(
      sorted([
        { target: { kind: 'tag', repository: 'team/app', tag: 'new' } },
        { target: { kind: 'tag', repository: 'team/app', tag: 'gone' } },
        { target: { kind: 'manifest', repository: 'team/app', digest: m1 } },
        { target: { kind: 'manifest', repository: 'team/app', digest: m2 } },
        { target: { kind: 'blob', repository: 'team/app', digest: l1 } },
        { target: { kind: 'blob', repository: 'team/app', digest: l2 } },
      ]),
    );
  });

  it('syncs the referrer manifest when only its referrer entry differs', () => {
    const p = inv({ revisions: [m1!, sig!], referrers: [sig!] });
    const r = inv({ revisions: [m1!, sig!] });
    expect(diff('app', p, r)).toEqual([
      { target: { kind: 'manifest', repository: 'app', digest: sig }, referrer: true },
    ]);
    // The other way round too: the region holds an entry the primary no longer has.
    expect(diff('app', r, p)).toEqual([
      { target: { kind: 'manifest', repository: 'app', digest: sig }, referrer: true },
    ]);
  });

  it('does not name a referrer twice when its manifest is missing anyway', () => {
    const p = inv({ revisions: [m1!, sig!], referrers: [sig!] });
    const r = inv({ revisions: [m1!] });
    expect(diff('app', p, r)).toEqual([
      { target: { kind: 'manifest', repository: 'app', digest: sig } },
    ]);
  });

  it('queues a lock the region lacks or holds an older record of, never one it is ahead on', () => {
    const p = inv({ locks: { repository: 5, 'tag=v1': 7, 'tag=v2': 3 } });
    const r = inv({ locks: { repository: 5, 'tag=v1': 6, 'tag=v2': 4, 'tag=old': 1 } });
    expect(sorted(diff('app', p, r).map((d) => d.target))).toEqual(
      sorted([
        { kind: 'lock', repository: 'app', lock: 'tag=v1' },
        { kind: 'lock', repository: 'app', lock: 'tag=old' },
      ]),
    );
  });
});
