import { OciError } from '@meridian/oci';
import { KdfPool } from './kdf-pool';

describe('KdfPool', () => {
  it('runs at most `concurrency` at once and refuses beyond the queue with a retry time', async () => {
    const pool = new KdfPool({ concurrency: 2, maxQueue: 3 });
    let running = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    const job = () =>
      pool.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
        return 'done';
      });
    const results = Array.from({ length: 8 }, () => job().catch((e: unknown) => e));
    await new Promise((r) => setImmediate(r));
    expect(pool.load).toEqual({ running: 2, waiting: 3 });
    while (gates.length > 0 || running > 0) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    const out = await Promise.all(results);
    expect(out.filter((x) => x === 'done')).toHaveLength(5);
    const refused = out.filter((x): x is OciError => x instanceof OciError);
    expect(refused).toHaveLength(3);
    expect(refused[0]!.code).toBe('TOOMANYREQUESTS');
    expect((refused[0]!.detail as { retryAfter: number }).retryAfter).toBeGreaterThanOrEqual(1);
    expect(peak).toBe(2);
    expect(pool.load).toEqual({ running: 0, waiting: 0 });
  });
});
