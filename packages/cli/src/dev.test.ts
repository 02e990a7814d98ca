import { checkDevNumbers, devPorts } from './dev';
import { restartDelayMs } from './dev-processes';

describe('meridian dev ports', () => {
  it('puts the gateway on --port, then each region’s nodes, then Redis and the worker metrics', () => {
    const one = devPorts(5000, 3, 1);
    expect([0, 1, 2].map((r) => one.node(r, 0))).toEqual([5001, 5002, 5003]);
    expect([one.redis, one.workerMetrics, one.last]).toEqual([5004, 5005, 5005]);
    const two = devPorts(5000, 2, 2);
    expect([two.node(0, 0), two.node(0, 1), two.node(1, 0), two.node(1, 1)]).toEqual([
      5001, 5002, 5003, 5004,
    ]);
    expect([two.redis, two.workerMetrics]).toEqual([5005, 5006]);
  });

  it('refuses a --port or --nodes-per-region it cannot use, naming the flag', () => {
    expect(() => checkDevNumbers(5000, 3, 1)).not.toThrow();
    expect(() => checkDevNumbers(65_530, 3, 1)).not.toThrow();
    for (const port of [0, -1, 65_531, 70_000, Number.NaN, 5000.5])
      expect(() => checkDevNumbers(port, 3, 1)).toThrow(
        "--port: a whole number from 1 to 65530 (the gateway's port; the 5 ports after it are used too)",
      );
    expect(() => checkDevNumbers(65_530, 3, 2)).toThrow(/--port: a whole number from 1 to 65527/);
    for (const n of [0, 17, 1.5, Number.NaN])
      expect(() => checkDevNumbers(5000, 3, n)).toThrow(
        '--nodes-per-region: a whole number from 1 to 16',
      );
  });
});

describe('restart backoff', () => {
  it('waits 1 s, then doubles up to 30 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 20].map(restartDelayMs)).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });
});
