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
