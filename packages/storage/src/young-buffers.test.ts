import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { RECLAIM_EVERY, streamed } from './young-buffers';
import { writevFully } from './fs-write';

/** Minor collections that started while `fn` ran (V8 reports each as a `gc` performance entry). */
async function minorGcsDuring(fn: () => void): Promise<number> {
  const seen: { startTime: number; kind?: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      seen.push({
        startTime: e.startTime,
        kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind,
      });
  });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  // GC entries are delivered asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 50));
  obs.disconnect();
  return seen.filter(
    (e) => e.kind === constants.NODE_PERFORMANCE_GC_MINOR && e.startTime >= t0 && e.startTime <= t1,
  ).length;
}

describe('streamed: a minor collection every RECLAIM_EVERY bytes', () => {
  it('collects once the bytes streamed reach the threshold, not before', async () => {
    // Whatever an earlier test counted: cross one threshold to start from zero.
    streamed(RECLAIM_EVERY);
    const before = await minorGcsDuring(() => streamed(RECLAIM_EVERY - 1));
    expect(before).toBe(0);
    const after = await minorGcsDuring(() => streamed(1));
    expect(after).toBeGreaterThanOrEqual(1);
    const many = await minorGcsDuring(() => {
      for (let i = 0; i < 3; i++) streamed(RECLAIM_EVERY);
    });
    expect(many).toBeGreaterThanOrEqual(3);
  });
});

describe('writevFully', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meridian-writev-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every buffer in order, at a position or at the end', async () => {
    const fh = await open(join(dir, 'f'), 'w+');
    try {
      const a = Buffer.from('hello ');
      const b = Buffer.from('world');
      expect(await writevFully(fh, [a, b], null)).toBe(11);
      expect(await writevFully(fh, [Buffer.from('W')], 6)).toBe(1);
      expect(await writevFully(fh, [Buffer.from('!')], null)).toBe(1);
    } finally {
      await fh.close();
    }
    expect(await readFile(join(dir, 'f'), 'utf8')).toBe('hello World!');
  });

  it('continues after short writes with the bytes not yet written', async () => {
    const out: Buffer[] = [];
    const positions: (number | undefined)[] = [];
    // A disk that takes at most 3 bytes per call.
    const fh = {
      writev: (bufs: Buffer[], position?: number) => {
        positions.push(position);
        const all = Buffer.concat(bufs).subarray(0, 3);
        out.push(Buffer.from(all));
        return Promise.resolve({ bytesWritten: all.length, buffers: bufs });
      },
    } as unknown as FileHandle;
    const n = await writevFully(fh, [Buffer.from('ab'), Buffer.from('cdef'), Buffer.from('g')], 10);
    expect(n).toBe(7);
    expect(Buffer.concat(out).toString()).toBe('abcdefg');
    expect(positions).toEqual([10, 13, 16]);
  });

  it('fails rather than loop when the disk takes nothing', async () => {
    const fh = {
      writev: () => Promise.resolve({ bytesWritten: 0, buffers: [] }),
    } as unknown as FileHandle;
    await expect(writevFully(fh, [Buffer.from('x')], null)).rejects.toThrow(/no byte/);
  });
});
