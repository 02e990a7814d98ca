import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventDispatcher } from './event-dispatcher';
import { EventJournal } from './event-journal';
import { RegistryEvents, type RegistryEvent } from './events';

interface E {
  sequence: number;
  repository: string;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meridian-journal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const add = (j: EventJournal<E>, repository: string) =>
  j.append((sequence) => ({ sequence, repository }));

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

describe('EventJournal', () => {
  it('numbers appends in order and reads back only durable entries', async () => {
    const j = await EventJournal.open<E>({ dir });
    const a = add(j, 'a');
    const b = add(j, 'b');
    expect([a.entry.sequence, b.entry.sequence]).toEqual([1, 2]);
    expect(await j.read(0, 10)).toEqual([]);
    await Promise.all([a.durable, b.durable]);
    expect((await j.read(0, 10)).map((e) => e.repository)).toEqual(['a', 'b']);
    expect(await j.read(1, 10)).toEqual([{ sequence: 2, repository: 'b' }]);
    await j.close();
  });

  it('shares one fsync among appends made while a write is in flight (group commit)', async () => {
    const j = await EventJournal.open<E>({ dir });
    await Promise.all(Array.from({ length: 200 }, (_, i) => add(j, `r${i}`).durable));
    expect(j.last).toBe(200);
    expect(j.fsyncs).toBeLessThan(10);
    await j.close();
  });

  it('replays after reopening, and cuts a torn last line', async () => {
    const j = await EventJournal.open<E>({ dir });
    await Promise.all([add(j, 'a').durable, add(j, 'b').durable]);
    await j.close();
    const [seg] = await readdir(dir);
    await appendFile(join(dir, seg!), '{"sequence":3,"repos');
    const k = await EventJournal.open<E>({ dir });
    expect(k.last).toBe(2);
    expect((await k.read(0, 10)).map((e) => e.sequence)).toEqual([1, 2]);
    await add(k, 'c').durable;
    await k.close();
    const m = await EventJournal.open<E>({ dir, memoryEntries: 1 });
    expect((await m.read(0, 10)).map((e) => e.repository)).toEqual(['a', 'b', 'c']);
    await m.close();
  });

  it('refuses a directory another live process journals to', async () => {
    await writeFile(join(dir, 'LOCK'), String(process.ppid));
    await expect(EventJournal.open<E>({ dir })).rejects.toThrow(/in use by process/);
    await writeFile(join(dir, 'LOCK'), '2147483646'); // no such process: a crash's leftover
    const j = await EventJournal.open<E>({ dir });
    await j.close();
  });

  it('rotates segments and removes those every subscriber acknowledged', async () => {
    const j = await EventJournal.open<E>({ dir, segmentBytes: 64, memoryEntries: 2 });
    for (let i = 0; i < 10; i++) await add(j, `repo-${i}`).durable;
    expect(j.segmentList().length).toBeGreaterThan(3);
    expect((await j.read(3, 2)).map((e) => e.sequence)).toEqual([4, 5]);
    await j.truncate(5);
    expect(j.first).toBeGreaterThan(1);
    expect(j.first).toBeLessThanOrEqual(6);
    expect((await j.read(5, 100)).map((e) => e.sequence)).toEqual([6, 7, 8, 9, 10]);
    await j.close();
  });
});

describe('EventDispatcher', () => {
  it('delivers in order, persists offsets, and resumes after them on restart', async () => {
    const jdir = join(dir, 'journal');
    const offsetsDir = join(dir, 'offsets');
    let j = await EventJournal.open<E>({ dir: jdir });
    let d = new EventDispatcher(j, { offsetsDir });
    const got: number[] = [];
    await d.attach({ name: 'audit', deliver: (e) => void got.push(e.sequence) });
    for (let i = 0; i < 3; i++) await add(j, 'a').durable;
    await until(() => got.length === 3);
    await d.close();
    await j.close();
    expect(JSON.parse(await readFile(join(offsetsDir, 'audit.json'), 'utf8'))).toEqual({
      sequence: 3,
    });

    // Two more while nobody listens (a crash after the reply), then a restart.
    j = await EventJournal.open<E>({ dir: jdir });
    await Promise.all([add(j, 'a').durable, add(j, 'b').durable]);
    await j.close();
    j = await EventJournal.open<E>({ dir: jdir });
    d = new EventDispatcher(j, { offsetsDir });
    await d.attach({ name: 'audit', deliver: (e) => void got.push(e.sequence) });
    await until(() => got.length === 5);
    expect(got).toEqual([1, 2, 3, 4, 5]);
    await d.close();
    await j.close();
  });

  it('retries a failing subscriber without holding back the others', async () => {
    const j = EventJournal.memory<E>();
    const d = new EventDispatcher(j, { backoffMs: 5 });
    let failures = 2;
    const flaky: number[] = [];
    const steady: number[] = [];
    await d.attach({
      name: 'flaky',
      deliver: (e) => {
        if (failures-- > 0) throw new Error('down');
        flaky.push(e.sequence);
      },
    });
    await d.attach({ name: 'hangs', deliver: () => new Promise(() => {}), timeoutMs: 50 });
    await d.attach({ name: 'steady', deliver: (e) => void steady.push(e.sequence) });
    await Promise.all([add(j, 'a').durable, add(j, 'a').durable]);
    await until(() => steady.length === 2 && flaky.length === 2);
    expect(flaky).toEqual([1, 2]);
    expect(d.acknowledged()).toMatchObject({ flaky: 2, steady: 2, hangs: 0 });
    await d.close();
  });
});

describe('RegistryEvents', () => {
  it('stamps actor, request id, region and sequence, and adds referrerAdded', async () => {
    const events = new RegistryEvents({ region: 'eu' });
    const seen: RegistryEvent[] = [];
    events.subscribe((e) => void seen.push(e));
    const actor = { kind: 'user', name: 'alice', address: '10.0.0.1', userAgent: 'skopeo' };
    await events.withRequest({ actor, requestId: 'r-1' }, () =>
      events.emit({
        type: 'manifestPut',
        repository: 'x',
        digest: 'sha256:a',
        mediaType: 'm',
        subject: 'sha256:s',
        at: 0,
      }),
    );
    await events.emit({ type: 'tagDeleted', repository: 'x', tag: 't', at: 0 });
    expect(seen.map((e) => [e.type, e.sequence, e.actor.name, e.requestId])).toEqual([
      ['manifestPut', 1, 'alice', 'r-1'],
      ['referrerAdded', 2, 'alice', 'r-1'],
      ['tagDeleted', 3, 'meridian', undefined],
    ]);
    expect(seen[0]).toMatchObject({ region: 'eu', time: '1970-01-01T00:00:00.000Z', actor });
    await events.close();
  });
});
