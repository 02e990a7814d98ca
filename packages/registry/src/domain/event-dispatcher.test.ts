import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventDispatcher } from './event-dispatcher';
import { EventJournal } from './event-journal';

interface E {
  sequence: number;
  repository: string;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meridian-dispatch-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const add = (j: EventJournal<E>, repository: string) =>
  j.append((sequence) => ({ sequence, repository })).durable;

function until(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (check()) {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });
}

const savedOffset = async (name: string): Promise<number | undefined> => {
  try {
    const text = await readFile(join(dir, 'offsets', `${name}.json`), 'utf8');
    return (JSON.parse(text) as { sequence: number }).sequence;
  } catch {
    return undefined;
  }
};

/** A subscriber that buffers what it is given and writes it on `flush` (like the audit log). */
function buffering(opts: { failFlushes?: number; hangFlush?: () => boolean } = {}) {
  let failures = opts.failFlushes ?? 0;
  let pending: number[] = [];
  const written: number[] = [];
  const delivered: number[] = [];
  return {
    written,
    delivered,
    sub: {
      name: 'buffered',
      timeoutMs: 100,
      deliver: (e: E) => {
        delivered.push(e.sequence);
        pending.push(e.sequence);
      },
      flush: async () => {
        const batch = pending;
        pending = [];
        if (opts.hangFlush?.()) await new Promise(() => {});
        if (failures-- > 0) throw new Error('store down');
        written.push(...batch);
      },
    },
  };
}

describe('EventDispatcher: subscribers that flush', () => {
  it('saves the offset only once the delivered run was flushed', async () => {
    const j = EventJournal.memory<E>();
    const d = new EventDispatcher(j, { offsetsDir: join(dir, 'offsets'), backoffMs: 5 });
    const b = buffering({ failFlushes: 2 });
    await d.attach(b.sub);
    await Promise.all([add(j, 'a'), add(j, 'b'), add(j, 'a')]);
    await until(() => b.written.length === 3);
    // Two failed flushes: the run was delivered three times, and written once.
    expect(b.written).toEqual([1, 2, 3]);
    expect(b.delivered.length).toBeGreaterThanOrEqual(9);
    await until(() => d.acknowledged().buffered === 3);
    await d.close();
    expect(await savedOffset('buffered')).toBe(3);
  });

  it('keeps no offset past a run whose flush never finished: a restart delivers it again', async () => {
    const jdir = join(dir, 'journal');
    const offsetsDir = join(dir, 'offsets');
    let j = await EventJournal.open<E>({ dir: jdir });
    let d = new EventDispatcher(j, { offsetsDir, backoffMs: 5 });
    let hang = false;
    const first = buffering({ hangFlush: () => hang });
    await d.attach(first.sub);
    await add(j, 'a');
    await until(() => first.written.length === 1);
    await until(() => d.acknowledged().buffered === 1);
    hang = true; // the node is killed while the store is slow
    await add(j, 'a');
    await until(() => first.delivered.length >= 2);
    await d.close();
    await j.close();
    expect(await savedOffset('buffered')).toBe(1);

    j = await EventJournal.open<E>({ dir: jdir });
    d = new EventDispatcher(j, { offsetsDir, backoffMs: 5 });
    const second = buffering();
    await d.attach(second.sub);
    await until(() => second.written.length === 1);
    expect(second.written).toEqual([2]);
    await d.close();
    await j.close();
  });
});

const byRepository = (e: E) => e.repository;
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A gate a delivery can wait on. */
function gate() {
  let open!: () => void;
  const closed = new Promise<void>((r) => (open = r));
  return { closed, open };
}

describe('EventDispatcher: repositories side by side', () => {
  it('keeps commit order within each repository while repositories run in parallel', async () => {
    const j = EventJournal.memory<E>();
    const d = new EventDispatcher(j, { partition: byRepository });
    const seen = new Map<string, number[]>();
    let active = 0;
    let most = 0;
    await d.attach({
      name: 'random-delays',
      deliver: async (e) => {
        most = Math.max(most, ++active);
        await tick(Math.random() * 4);
        active--;
        seen.set(e.repository, [...(seen.get(e.repository) ?? []), e.sequence]);
      },
    });
    const repos = ['a', 'b', 'c', 'd'];
    const appended = new Map<string, number[]>();
    for (let i = 0; i < 80; i++) {
      const repo = repos[Math.floor(Math.random() * repos.length)]!;
      const { entry, durable } = j.append((sequence) => ({ sequence, repository: repo }));
      appended.set(repo, [...(appended.get(repo) ?? []), entry.sequence]);
      if (i % 10 === 0) await durable;
    }
    await until(() => d.acknowledged()['random-delays'] === 80);
    expect(seen).toEqual(appended); // every event, each repository in commit order
    expect(most).toBeGreaterThan(1); // and they did run side by side
    await d.close();
  });

  it('lets a slow repository hold back only itself; its offset waits for it', async () => {
    const j = EventJournal.memory<E>();
    const d = new EventDispatcher(j, { partition: byRepository, offsetsDir: join(dir, 'offsets') });
    const slow = gate();
    const got: string[] = [];
    await d.attach({
      name: 'sub',
      deliver: async (e) => {
        if (e.repository === 'slow' && e.sequence === 1) await slow.closed;
        got.push(`${e.repository}#${e.sequence}`);
      },
    });
    await add(j, 'slow');
    await Promise.all([add(j, 'fast'), add(j, 'slow'), add(j, 'fast'), add(j, 'other')]);
    await until(() => got.length === 3);
    // slow#3 waits behind slow#1; the others are through, each repository in order.
    expect(got.filter((g) => g.startsWith('fast'))).toEqual(['fast#2', 'fast#4']);
    expect(got).toContain('other#5');
    await tick(250); // past the offset-save interval: still nothing acknowledged
    expect(d.acknowledged().sub).toBe(0);
    expect(await savedOffset('sub')).toBeUndefined();
    slow.open();
    await until(() => d.acknowledged().sub === 5);
    expect(got.slice(3)).toEqual(['slow#1', 'slow#3']);
    await d.close();
    expect(await savedOffset('sub')).toBe(5);
  });

  it('lets other repositories run ahead of a stuck one by the window at most', async () => {
    const j = EventJournal.memory<E>();
    const d = new EventDispatcher(j, { partition: byRepository, window: 3 });
    const stuck = gate();
    const got: number[] = [];
    await d.attach({
      name: 'sub',
      deliver: async (e) => {
        if (e.repository === 'stuck') await stuck.closed;
        got.push(e.sequence);
      },
    });
    await add(j, 'stuck');
    for (let i = 0; i < 6; i++) await add(j, `r${i}`);
    await until(() => got.length === 2);
    await tick(50);
    expect(got).toEqual([2, 3]); // entries 1..3 are in the window; 4.. wait
    stuck.open();
    await until(() => got.length === 7);
    expect(d.acknowledged().sub).toBe(7);
    await d.close();
  });

  it('retries a failing repository in order without holding back the others', async () => {
    const j = EventJournal.memory<E>();
    const d = new EventDispatcher(j, { partition: byRepository, backoffMs: 5 });
    let failures = 3;
    const got: string[] = [];
    await d.attach({
      name: 'sub',
      deliver: (e) => {
        if (e.repository === 'flaky' && failures-- > 0) throw new Error('down');
        got.push(`${e.repository}#${e.sequence}`);
      },
    });
    await Promise.all([add(j, 'flaky'), add(j, 'flaky'), add(j, 'ok'), add(j, 'ok')]);
    await until(() => got.length === 4);
    expect(got.filter((g) => g.startsWith('flaky'))).toEqual(['flaky#1', 'flaky#2']);
    expect(got.indexOf('ok#4')).toBeLessThan(got.indexOf('flaky#1'));
    await until(() => d.acknowledged().sub === 4);
    await d.close();
  });

  it('delivers in global commit order to a subscriber that asks for it', async () => {
    const j = EventJournal.memory<E>();
    const d = new EventDispatcher(j, { partition: byRepository });
    const got: number[] = [];
    await d.attach({
      name: 'ordered',
      order: 'global',
      deliver: async (e) => {
        await tick(Math.random() * 3);
        got.push(e.sequence);
      },
    });
    for (let i = 0; i < 20; i++) await add(j, `r${i % 4}`);
    await until(() => got.length === 20);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await d.close();
  });

  it('delivers everything since the offset again when a flush fails, across repositories', async () => {
    const j = EventJournal.memory<E>();
    const d = new EventDispatcher(j, {
      partition: byRepository,
      offsetsDir: join(dir, 'offsets'),
      backoffMs: 5,
    });
    const b = buffering({ failFlushes: 1 });
    await d.attach(b.sub);
    await Promise.all(['a', 'b', 'c', 'a', 'b', 'c'].map((r) => add(j, r)));
    await until(() => d.acknowledged().buffered === 6);
    expect([...b.written].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(b.delivered.length).toBeGreaterThan(6); // the failed run was delivered again
    await d.close();
    expect(await savedOffset('buffered')).toBe(6);
  });
});
