import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { ProcessRestart } from '@meridian/replication';

/** What `<data>/pids.json` holds while the dev cluster runs (for scripts and tests). */
export interface DevPids {
  dev: number;
  redis?: number;
  /** Per region, its first node's pid. */
  regions: Record<string, number>;
  /** Per region, every node's pid (`--nodes-per-region`), first node first. */
  nodes: Record<string, number[]>;
  worker?: number;
  gateway?: number;
  /** The latest restarts (newest first, at most `RESTARTS_KEPT`); the dashboard shows them too. */
  restarts?: ProcessRestart[];
}

/** Restarts kept in `pids.json`. */
const RESTARTS_KEPT = 20;

/** One process `meridian dev` runs and keeps running. */
export interface DevChildSpec {
  /** What the terminal calls it: `region westeurope node 2`, `worker`, … */
  label: string;
  kind: ProcessRestart['kind'];
  /** A node's region. */
  region?: string;
  command: string;
  args: string[];
  stdio: StdioOptions;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Where it answers `/healthz` once up (restarts wait for it before saying it is back). */
  healthUrl?: string;
  /** Writes its pid into `pids.json`. */
  record: (pids: DevPids, pid: number) => void;
}

/** Delay before the n-th restart in a row (0-based): 1 s, 2 s, 4 s, … at most 30 s. */
export function restartDelayMs(n: number): number {
  return Math.min(30_000, 1000 * 2 ** n);
}

/** A child that ran this long before it died starts its backoff from the beginning again. */
const STABLE_MS = 60_000;

let setprivFound: boolean | undefined;
/** Whether `setpriv --pdeathsig` (util-linux) is here to tie a child's life to ours. */
function hasSetpriv(): boolean {
  setprivFound ??= process.platform === 'linux' && spawnSync('setpriv', ['--version']).status === 0;
  return setprivFound;
}

/**
 * The processes of a dev cluster: spawned so that they die with `meridian dev` (on Linux the
 * kernel sends them SIGTERM when it goes, even by `kill -9`: `setpriv --pdeathsig`), written
 * down in `<data>/pids.json`, and restarted with backoff when one dies.
 */
export class DevProcesses {
  readonly pids: DevPids;
  private readonly running = new Set<ChildProcess>();
  private stopping = false;
  private supervising = false;

  constructor(
    private readonly pidsFile: string,
    private readonly say: (line: string) => void,
    /** Told of every restart (`meridian dev` records it in Redis for the dashboard). */
    private readonly onRestart: (r: ProcessRestart) => void = () => {},
  ) {
    this.pids = { dev: process.pid, regions: {}, nodes: {} };
  }

  /** Starts a child; after `supervise()`, it is restarted whenever it dies. */
  start(spec: DevChildSpec, restarts = 0): ChildProcess {
    const [command, args] = hasSetpriv()
      ? ['setpriv', ['--pdeathsig', 'SIGTERM', '--', spec.command, ...spec.args]]
      : [spec.command, spec.args];
    const child = spawn(command, args, {
      stdio: spec.stdio,
      env: spec.env ? { ...process.env, ...spec.env } : process.env,
    });
    const startedAt = Date.now();
    this.running.add(child);
    if (child.pid !== undefined) {
      spec.record(this.pids, child.pid);
      this.save();
    }
    child.once('error', (err) => this.say(`${spec.label}: ${err.message}`));
    child.once('exit', (code, signal) => {
      this.running.delete(child);
      if (this.stopping || !this.supervising) return;
      const n = Date.now() - startedAt > STABLE_MS ? 0 : restarts;
      const delay = restartDelayMs(n);
      const exitedAt = new Date().toISOString();
      const reason = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      this.say(
        `${spec.label} (pid ${child.pid}) ${reason}; restarting it in ${delay / 1000} s` +
          (n > 0 ? ` (restart ${n + 1} in a row)` : ''),
      );
      setTimeout(() => {
        if (this.stopping) return;
        const next = this.start(spec, n + 1);
        const restart: ProcessRestart = {
          process: spec.label,
          kind: spec.kind,
          ...(spec.region !== undefined && { region: spec.region }),
          pid: child.pid ?? 0,
          exitedAt,
          reason,
          restartedAt: new Date().toISOString(),
          ...(next.pid !== undefined && { newPid: next.pid }),
        };
        this.pids.restarts = [restart, ...(this.pids.restarts ?? [])].slice(0, RESTARTS_KEPT);
        this.save();
        this.onRestart(restart);
        if (spec.healthUrl)
          void waitHealthy(spec.healthUrl, next, spec.label).then(
            () => this.say(`${spec.label} is back (pid ${next.pid})`),
            () => {}, // its exit is reported (and restarted) above
          );
      }, delay).unref();
    });
    return child;
  }

  /** From now on a child that dies is reported and restarted. */
  supervise(): void {
    this.supervising = true;
  }

  /** Stops every child (SIGTERM) and removes `pids.json`. */
  stopAll(): void {
    this.stopping = true;
    rmSync(this.pidsFile, { force: true });
    for (const c of [...this.running].reverse())
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  }

  private save(): void {
    if (!this.stopping) writeFileSync(this.pidsFile, JSON.stringify(this.pids, null, 2));
  }
}

export async function waitHealthy(url: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited with ${child.signalCode ?? `code ${child.exitCode}`}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become healthy at ${url}`);
}

/** A process's command line (`/proc/<pid>/cmdline`), or undefined when it is gone (or not Linux). */
export function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/** Whether a process runs (a zombie, dead but not yet reaped by its new parent, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // `pid (comm) S …`: the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (let i = 0; i < ms / 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

/**
 * Deals with what a previous `meridian dev` on this data directory left in `pids.json`: refuses
 * to start while that `meridian dev` still runs; stops its children that still run (a process is
 * only taken for one of them when its command line says so: a pid the system gave to another
 * program since is left alone). Returns what it stopped, for the terminal.
 */
export async function stopLeftovers(
  pidsFile: string,
  data: string,
): Promise<{ pid: number; what: string }[]> {
  if (!existsSync(pidsFile)) return [];
  let old: Partial<DevPids>;
  try {
    old = JSON.parse(readFileSync(pidsFile, 'utf8')) as Partial<DevPids>;
  } catch {
    return [];
  }
  const cluster = `${data}/cluster.json`;
  if (old.dev && old.dev !== process.pid && alive(old.dev)) {
    const cmd = commandLine(old.dev) ?? [];
    if (cmd.includes('dev'))
      throw new Error(
        `another meridian dev (pid ${old.dev}) runs on ${data}: stop it first (kill ${old.dev}), or use another --data`,
      );
  }
  const candidates: { pid: number; what: string; ours: (cmd: string[]) => boolean }[] = [];
  const node = (what: string, sub: string) => (pid: number) =>
    candidates.push({
      pid,
      what,
      ours: (cmd) => cmd.includes(sub) && cmd.includes(cluster),
    });
  for (const [region, pids] of Object.entries(old.nodes ?? {}))
    for (const pid of pids) node(`region ${region} node`, 'serve')(pid);
  for (const [region, pid] of Object.entries(old.regions ?? {}))
    node(`region ${region}`, 'serve')(pid);
  if (old.worker) node('worker', 'worker')(old.worker);
  if (old.gateway) node('gateway', 'gateway')(old.gateway);
  if (old.redis)
    candidates.push({
      pid: old.redis,
      what: 'redis-server',
      ours: (cmd) => cmd.some((a) => a.includes('redis-server')) && cmd.includes(`${data}/redis`),
    });
  const stopped: { pid: number; what: string }[] = [];
  const seen = new Set<number>();
  for (const c of candidates) {
    if (seen.has(c.pid) || c.pid === process.pid) continue;
    seen.add(c.pid);
    const cmd = commandLine(c.pid);
    if (!cmd || !c.ours(cmd)) continue;
    process.kill(c.pid, 'SIGTERM');
    process.kill(c.pid, 'SIGCONT'); // a stopped (hung) process acts on it too
    stopped.push({ pid: c.pid, what: c.what });
  }
  for (const s of stopped) {
    if (await waitGone(s.pid, 10_000)) continue;
    process.kill(s.pid, 'SIGKILL');
    if (!(await waitGone(s.pid, 5000)))
      throw new Error(`${s.what} (pid ${s.pid}), left by an earlier meridian dev, does not stop`);
  }
  rmSync(pidsFile, { force: true });
  return stopped;
}

/** Whether `host:port` can be bound now. */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(false));
    s.listen(port, host, () => s.close(() => done(true)));
  });
}
