// The registries under test, as child processes on fresh temp directories. Everything started
// here is tracked, and stopped by PID (and its directory removed) on success, failure or signal.
import { spawn, execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/**
 * The built CLI under test: this checkout's, or another build's (`MERIDIAN_BENCH_CLI`, e.g. a
 * clean worktree of HEAD when the shared checkout holds other people's unfinished edits).
 */
export const MERIDIAN_CLI = resolve(
  process.env.MERIDIAN_BENCH_CLI ?? join(REPO_ROOT, 'packages/cli/dist/main.js'),
);
/** The checkout that CLI was built from. */
export const MERIDIAN_ROOT = resolve(MERIDIAN_CLI, '../../../..');
export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';
/**
 * The V8 settings Meridian runs with as shipped (the image's NODE_OPTIONS, `meridian dev`'s
 * children; packages/cli/src/node-options.ts), unless MERIDIAN_BENCH_NODE_OPTIONS names others.
 */
export const MERIDIAN_NODE_OPTIONS =
  process.env.MERIDIAN_BENCH_NODE_OPTIONS ??
  (await import(join(MERIDIAN_ROOT, 'packages/cli/dist/node-options.js'))).DEFAULT_NODE_OPTIONS;

/** Every child still running, by PID. */
const running = new Map();
let root;

/** The bench's one temp directory; everything else lives under it. */
export function benchRoot() {
  root ??= mkdtempSync(join(tmpdir(), 'meridian-bench-'));
  return root;
}

export function tempDir(name) {
  const d = join(benchRoot(), name);
  mkdirSync(d, { recursive: true });
  return d;
}

export async function freePort() {
  const srv = createServer();
  await new Promise((ok, fail) => srv.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = srv.address();
  await new Promise((ok) => srv.close(ok));
  return port;
}

function tail(file, n = 2000) {
  try {
    const s = readFileSync(file, 'utf8');
    return s.slice(-n);
  } catch {
    return '';
  }
}

/** Spawns a server with stdout/stderr to a log file and waits until `GET /v2/` answers. */
export async function startServer({ name, cmd, args, env, port, dir, headers = {} }) {
  const logFile = join(benchRoot(), `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  running.set(child.pid, { child, exited });
  child.once('exit', () => running.delete(child.pid));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!running.has(child.pid)) throw new Error(`${name} exited at start-up:\n${tail(logFile)}`);
    try {
      const r = await fetch(`${url}/v2/`, { headers });
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopPid(child.pid);
      throw new Error(`${name} did not become ready in 30 s:\n${tail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    name,
    url,
    host: `127.0.0.1:${port}`,
    pid: child.pid,
    dir,
    logFile,
    stop: () => stopPid(child.pid),
  };
}

/**
 * Meridian over fs storage in a fresh directory, via the built CLI (`node packages/cli/dist/main.js
 * serve`), so the PID is the node process itself (RSS sampling, --cpu-prof).
 */
export async function startMeridian({
  name = 'meridian',
  logLevel = 'warn',
  nodeArgs = [],
  ownerPassword,
  env: extraEnv = {},
} = {}) {
  const port = await freePort();
  const dir = tempDir(`${name}-data`);
  // Auth off: the comparison is with Distribution's defaults, which have none. With
  // `ownerPassword` (the login-abuse row) it is on, and `owner` has that password.
  const env = {
    ...process.env,
    MERIDIAN_LOG_LEVEL: logLevel,
    MERIDIAN_AUTH_ENABLED: 'false',
    NODE_OPTIONS: MERIDIAN_NODE_OPTIONS,
    ...extraEnv,
  };
  if (ownerPassword) {
    env.MERIDIAN_AUTH_ENABLED = 'true';
    env.MERIDIAN_OWNER_PASSWORD = ownerPassword;
  }
  const args = [
    ...nodeArgs,
    MERIDIAN_CLI,
    'serve',
    '--listen',
    `127.0.0.1:${port}`,
    '--storage',
    dir,
  ];
  // Ready once the owner can sign in (it is created once the node listens).
  const headers = ownerPassword
    ? { authorization: `Basic ${Buffer.from(`owner:${ownerPassword}`).toString('base64')}` }
    : {};
  return startServer({ name, cmd: process.execPath, args, env, port, dir, headers });
}

/**
 * CNCF Distribution with the Debian package's defaults (in-memory blob descriptor cache, deletes
 * enabled), logging at error and no access log (Meridian runs at warn, which drops its
 * per-request lines too). AWS_CA_BUNDLE is removed from its environment: with it set it panics.
 */
export async function startDistribution({ name = 'distribution' } = {}) {
  const port = await freePort();
  const dir = tempDir(`${name}-data`);
  const config = join(benchRoot(), `${name}.yml`);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  cache:',
      '    blobdescriptor: inmemory',
      '  filesystem:',
      `    rootdirectory: ${dir}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  return startServer({ name, cmd: DISTRIBUTION_BIN, args: ['serve', config], env, port, dir });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopPid(pid, graceMs = 5000) {
  const entry = running.get(pid);
  if (!entry) return;
  entry.child.kill('SIGTERM');
  const timer = setTimeout(() => entry.child.kill('SIGKILL'), graceMs);
  await entry.exited;
  clearTimeout(timer);
}

/** Stops every child this bench started and removes the temp directory. */
export async function cleanup() {
  await Promise.all([...running.keys()].map((pid) => stopPid(pid)));
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
}

/** Last resort on `exit`: synchronous, so only SIGKILL and rm. */
export function cleanupSync() {
  for (const { child } of running.values()) child.kill('SIGKILL');
  running.clear();
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
}

export function distributionVersion() {
  try {
    return execFileSync(DISTRIBUTION_BIN, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export function isRunning(pid) {
  return running.has(pid);
}

/**
 * A bare node:http server (bench/lib/bare-server.mjs) answering every request with the response
 * `target` gives for `path` (status 200, its headers and body, recorded once): the same bytes on
 * the wire, with nothing else done per request.
 */
/** bench/lib/bare-proxy.mjs in front of `upstream` (a started server), its own process. */
export async function startBareProxy(upstream, name = 'bare-proxy') {
  const port = await freePort();
  return startServer({
    name,
    cmd: process.execPath,
    args: [join(REPO_ROOT, 'bench', 'lib', 'bare-proxy.mjs'), String(port), upstream.url],
    env: process.env,
    port,
    dir: tempDir(`${name}-data`),
  });
}

export async function startBareNode(target, path, requestHeaders = {}, name = 'bare-node') {
  const r = await fetch(`${target.url}${path}`, { headers: requestHeaders });
  const body = Buffer.from(await r.arrayBuffer());
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}, expected 200`);
  const headers = {};
  for (const [k, v] of r.headers) {
    if (!['date', 'connection', 'keep-alive', 'transfer-encoding'].includes(k)) headers[k] = v;
  }
  const dir = tempDir(`${name}-data`);
  const file = join(dir, 'response.json');
  writeFileSync(file, JSON.stringify({ headers, body: body.toString('base64') }));
  const port = await freePort();
  const script = join(REPO_ROOT, 'bench', 'lib', 'bare-server.mjs');
  return startServer({
    name,
    cmd: process.execPath,
    args: [script, String(port), file],
    env: process.env,
    port,
    dir,
  });
}
