/**
 * `meridian dev` survives its own crash, on real processes: `kill -9` of dev leaves no child
 * running; the next start stops what an earlier dev left in `pids.json` (only processes whose
 * command line says they are its own) instead of failing on a taken port; a child that dies is
 * reported, listed in `pids.json` and the regions API (the dashboard shows it), and restarted; a
 * bad `--port` or an unreachable `--redis` is one line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevPids } from '../../packages/cli/src/dev';
import { waitFor } from '../helpers/wait';
import {
  alive,
  childPids,
  exited,
  freePortRange,
  readPids,
  runCli,
  startDev,
  stopDev,
  type RunningDev,
} from './dev-harness';

jest.setTimeout(300_000);

/** One region: gateway, node, Redis, worker metrics. */
const PORTS = 4;

describe('meridian dev after a crash', () => {
  let data: string;
  let port: number;
  let dev: RunningDev | undefined;
  let first: DevPids;
  const started: number[] = [];
  let unrelated: ChildProcess | undefined;

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'meridian-dev-crash-'));
    port = await freePortRange(PORTS, 1);
    dev = await startDev(['--port', String(port), '--data', data, '--regions', 'eastus']);
    first = readPids(data);
    started.push(...childPids(first));
  });

  afterAll(async () => {
    await stopDev(dev, started);
    unrelated?.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
  });

  it('reports a child that dies and restarts it', async () => {
    const worker = first.worker!;
    process.kill(worker, 'SIGKILL');
    await waitFor(
      async () => {
        const now = readPids(data);
        return now.worker !== worker && alive(now.worker) && now.worker;
      },
      'dev to restart the worker',
      30_000,
    );
    expect(dev!.output()).toContain(
      `meridian dev: worker (pid ${worker}) was killed by SIGKILL; restarting it in 1 s`,
    );
    const now = readPids(data);
    started.push(now.worker!);
    // pids.json and the regions API (what the dashboard reads, through the gateway) list it.
    const restart = {
      process: 'worker',
      kind: 'worker',
      pid: worker,
      reason: 'was killed by SIGKILL',
      newPid: now.worker,
    };
    expect(now.restarts).toEqual([expect.objectContaining(restart)]);
    const password = readFileSync(join(data, 'owner-password'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${port}/meridian/v1/replication/regions`, {
      headers: { Authorization: `Basic ${Buffer.from(`owner:${password}`).toString('base64')}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { restarts?: Record<string, unknown>[] };
    expect(body.restarts).toEqual([expect.objectContaining(restart)]);
    const [r] = body.restarts!;
    expect(Date.parse(String(r!.exitedAt))).toBeLessThanOrEqual(Date.parse(String(r!.restartedAt)));
  });

  it('leaves no child running when it is killed with SIGKILL', async () => {
    const pids = readPids(data);
    expect(childPids(pids).length).toBeGreaterThanOrEqual(4); // redis, node, worker, gateway
    // A hung node (stopped) cannot act on the signal its parent's death sends: it stays, as
    // an orphan holding its port, for the next start to deal with.
    const hung = pids.regions.eastus!;
    process.kill(hung, 'SIGSTOP');
    dev!.child.kill('SIGKILL');
    expect(await exited(dev!.child, 10_000)).toBe(true);
    const others = childPids(pids).filter((p) => p !== hung);
    await waitFor(async () => others.every((p) => !alive(p)), 'every other child to exit', 15_000);
    expect(alive(hung)).toBe(true);
  });

  it('stops what the crashed dev left (and only that), then starts on the same ports', async () => {
    const hung = readPids(data).regions.eastus!;
    // A pid in the file that now belongs to another program must be left alone.
    unrelated = spawn('sleep', ['300'], { stdio: 'ignore' });
    const pids = readPids(data);
    writeFileSync(
      join(data, 'pids.json'),
      JSON.stringify({ ...pids, gateway: unrelated.pid } satisfies DevPids),
    );
    dev = await startDev(['--port', String(port), '--data', data, '--regions', 'eastus']);
    const now = readPids(data);
    started.push(...childPids(now));
    expect(dev.output()).toContain(
      `meridian dev: stopped region eastus node (pid ${hung}), left running by an earlier meridian dev`,
    );
    expect(alive(hung)).toBe(false);
    expect(alive(unrelated.pid)).toBe(true);
    expect(dev.output()).not.toContain(`pid ${unrelated.pid}`);
    expect(now.regions.eastus).not.toBe(hung);
    const res = await fetch(`http://127.0.0.1:${port}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-meridian-region')).toBe('eastus');
  });

  it('refuses to start a second dev on the same data while the first runs', async () => {
    const r = await runCli(['dev', '--port', String(port), '--data', data, '--regions', 'eastus']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `meridian: another meridian dev (pid ${dev!.child.pid}) runs on ${data}: stop it first (kill ${dev!.child.pid}), or use another --data\n`,
    );
    // and the running one is untouched
    expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
  });
});

describe('meridian dev start-up errors, in one line', () => {
  let data: string;
  let blocker: Server | undefined;

  beforeAll(() => {
    data = mkdtempSync(join(tmpdir(), 'meridian-dev-errors-'));
  });
  afterAll(async () => {
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    rmSync(data, { recursive: true, force: true });
  });

  it.each([
    ['70000', '--port: a whole number from 1 to 65532'],
    ['abc', '--port: a whole number from 1 to 65532'],
    ['0', '--port: a whole number from 1 to 65532'],
  ])('--port %s', async (value, message) => {
    const r = await runCli(['dev', '--port', value, '--data', data, '--regions', 'eastus']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `meridian: ${message} (the gateway's port; the 3 ports after it are used too)\n`,
    );
  });

  it('an unreachable --redis', async () => {
    const port = await freePortRange(PORTS, 1);
    const redisPort = port + 2; // free: nothing answers there
    const r = await runCli([
      'dev',
      '--port',
      String(port),
      '--data',
      data,
      '--regions',
      'eastus',
      '--redis',
      `redis://127.0.0.1:${redisPort}`,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `meridian: --redis redis://127.0.0.1:${redisPort}: Redis does not answer (connect ECONNREFUSED 127.0.0.1:${redisPort})\n`,
    );
    expect(r.stdout).toBe('');
  });

  it('a port another program holds', async () => {
    const port = await freePortRange(PORTS, 1);
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(port + 1, '127.0.0.1', r));
    const r = await runCli(['dev', '--port', String(port), '--data', data, '--regions', 'eastus']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `meridian: port 127.0.0.1:${port + 1} is taken by another program (meridian dev uses ${port}–${port + 3}): choose another --port\n`,
    );
  });
});
