/** Runs the built `meridian dev` as a user does, for the tests in test/dev. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { DevPids } from '../../packages/cli/src/dev';
import { waitFor } from '../helpers/wait';

export const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');

/** Whether `host:port` can be bound now. */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(false));
    s.listen(port, host, () => s.close(() => done(true)));
  });
}

/**
 * A base port with `n` free ports from it on 127.0.0.1, and the base free on 127.0.0.2 … 127.0.0.
 * `regions` too (`meridian dev` puts the gateway on the base, nodes, Redis and worker metrics on
 * the next ones).
 */
export async function freePortRange(n: number, regions: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768+), where other tests' port-0 servers and outgoing
    // connections take ports between this check and dev's listen.
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let i = 2; ok && i <= regions; i++) ok = await canBind(`127.0.0.${i}`, base);
    for (let i = 0; ok && i < n; i++) ok = await canBind('127.0.0.1', base + i);
    if (ok) return base;
  }
  throw new Error('no free range of loopback ports');
}

/** Whether a process runs: exists and is no zombie (an orphan dead but not reaped yet). */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Every pid in a `pids.json` but dev's own. */
export function childPids(p: DevPids): number[] {
  const nodes = Object.values(p.nodes ?? {}).flat();
  return [p.redis, p.worker, p.gateway, ...Object.values(p.regions), ...nodes].filter(
    (pid): pid is number => typeof pid === 'number',
  );
}

export function readPids(data: string): DevPids {
  return JSON.parse(readFileSync(join(data, 'pids.json'), 'utf8')) as DevPids;
}

export interface RunningDev {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
}

/** Starts `meridian dev` with `args`; resolves once it says it is up. Auth off. */
export async function startDev(args: string[]): Promise<RunningDev> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
  let out = '';
  const child = spawn(process.execPath, [CLI, 'dev', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MERIDIAN_AUTH_ENABLED: 'false' },
  });
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`meridian dev exited:\n${out}`);
      return out.includes('Meridian dev cluster is up');
    },
    'meridian dev to come up',
    180_000,
  ).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n${out}`);
  });
  return { child, output: () => out };
}

export function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((done) => {
    const t = setTimeout(() => done(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      done(true);
    });
  });
}

/** Stops a dev cluster a test started (SIGTERM, then SIGKILL), and anything it left. */
export async function stopDev(dev: RunningDev | undefined, pids: number[]): Promise<void> {
  if (dev && dev.child.exitCode === null && dev.child.signalCode === null) {
    dev.child.kill('SIGTERM');
    if (!(await exited(dev.child, 15_000))) dev.child.kill('SIGKILL');
  }
  for (const pid of pids)
    if (alive(pid)) {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    }
}

/**
 * Runs the built CLI to completion (a command expected to fail fast); a run that outlives
 * `timeoutMs` is killed and reported as such, so a regression cannot hang the suite.
 */
export function runCli(
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', MERIDIAN_AUTH_ENABLED: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      fail(
        new Error(
          `meridian ${args.join(' ')} still ran after ${timeoutMs} ms:\n${stdout}${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}
