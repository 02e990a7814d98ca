/**
 * Real registry clients (skopeo, podman) run with `execFile` in an isolated sandbox, against
 * plain-HTTP loopback registries.
 *
 * Isolation: every sandbox is a fresh temp directory holding the client's `HOME`,
 * `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME`/`XDG_DATA_HOME`, `TMPDIR`, `registries.conf`,
 * `storage.conf`, `containers.conf`, `policy.json` (insecureAcceptAnything), `registries.d`, the
 * auth file, and podman's `--root`/`--runroot`/`--tmpdir` (vfs). The environment is built from
 * scratch (only `PATH` is inherited), so no user or system config, proxy or credential leaks in.
 *
 * When the tests run as root, the clients run as an unprivileged uid (`nobody`, 65534): as root,
 * skopeo 1.9 and podman 4.3 keep their blob-info cache in `/var/lib/containers/cache` whatever
 * `--root`/`HOME` say, which would leave state outside the sandbox and carry blob locations
 * (hence mount attempts) from one test run to the next. Unprivileged, that cache lives under the
 * sandbox's `XDG_DATA_HOME`/`--root`. Podman then runs rootless with a single-uid mapping (no
 * `/etc/subuid` needed for pull/push) and leaves a "pause" process holding its user namespace,
 * which `close()` ends by the pid podman wrote in the sandbox.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** The uid/gid clients run as: the caller's own, or `nobody` when the caller is root. */
const CLIENT_ID = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;

export const INSECURE_POLICY = { default: [{ type: 'insecureAcceptAnything' }] };

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** A client command that exited non-zero (or timed out), with its output for the test log. */
export class ClientCommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: string[],
    readonly exitCode: number | string | undefined,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${command} ${args.join(' ')} failed (exit ${String(exitCode)}):\n${stderr.trim()}`);
    this.name = 'ClientCommandError';
  }
}

export interface ClientSandbox {
  /** The sandbox's root directory; clients may write anywhere under it. */
  readonly dir: string;
  /** The environment every client command gets. */
  readonly env: NodeJS.ProcessEnv;
  /** A path under the sandbox (not created) for a client to write to, e.g. a pull target. */
  readonly path: (name: string) => string;
  /** `skopeo --policy ... --registries.d ... --tmpdir ... ARGS` */
  readonly skopeo: (args: string[]) => Promise<ExecResult>;
  /** `podman --root ... --runroot ... --storage-driver vfs ... ARGS` */
  readonly podman: (args: string[]) => Promise<ExecResult>;
  /** Ends podman's pause process (if any) and removes the sandbox. */
  readonly close: () => Promise<void>;
}

/** Per-command time limit; generous because CI boxes here have 2 cores. */
const COMMAND_TIMEOUT_MS = 240_000;

async function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<ExecResult> {
  try {
    const { stdout, stderr } = await execFileP(command, args, {
      env,
      cwd,
      encoding: 'utf8',
      timeout: COMMAND_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
      ...CLIENT_ID,
    });
    return { stdout, stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string; code?: unknown };
    if (e.code === 'ENOENT') throw new Error(`${command} is not installed (apt: ${command})`);
    const code = typeof e.code === 'number' || typeof e.code === 'string' ? e.code : undefined;
    throw new ClientCommandError(command, args, code, e.stdout ?? '', e.stderr ?? e.message);
  }
}

function chownTree(path: string, id: { uid: number; gid: number }): void {
  chownSync(path, id.uid, id.gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) chownTree(p, id);
    else chownSync(p, id.uid, id.gid);
  }
}

/** Creates a fresh, isolated client sandbox. Call `close()` when done. */
export async function createClientSandbox(): Promise<ClientSandbox> {
  // Lowercase on purpose: `podman pull oci:DIR:TAG` names the image after DIR, and an upper-case
  // letter there (as mkdtemp's suffix may have) is an invalid reference.
  const dir = join(tmpdir(), `meridian-clients-${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  const d = (...p: string[]) => join(dir, ...p);
  const home = d('home');
  const configHome = d('home', '.config');
  const dirs = {
    home,
    run: d('run'),
    tmp: d('tmp'),
    config: join(configHome, 'containers'),
    registriesD: join(configHome, 'containers', 'registries.d'),
    data: d('home', '.local', 'share'),
    cache: d('home', '.cache'),
    root: d('podman', 'root'),
    // podman refuses a runroot longer than 50 characters: keep it short.
    runroot: d('prun'),
    libpodTmp: d('podman', 'tmp'),
    networks: d('podman', 'networks'),
  };
  for (const p of Object.values(dirs)) mkdirSync(p, { recursive: true, mode: 0o700 });
  const conf = (name: string, text: string): string => {
    const p = join(dirs.config, name);
    writeFileSync(p, text);
    return p;
  };
  const policy = conf('policy.json', JSON.stringify(INSECURE_POLICY));
  const registriesConf = conf(
    'registries.conf',
    'unqualified-search-registries = []\nshort-name-mode = "disabled"\n',
  );
  const storageConf = conf(
    'storage.conf',
    `[storage]\ndriver = "vfs"\ngraphroot = "${dirs.root}"\nrunroot = "${dirs.runroot}"\n`,
  );
  const containersConf = conf(
    'containers.conf',
    [
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `tmp_dir = "${dirs.libpodTmp}"`,
      '[network]',
      `network_config_dir = "${dirs.networks}"`,
      '',
    ].join('\n'),
  );
  const authFile = conf('auth.json', '{"auths":{}}');
  if (CLIENT_ID) chownTree(dir, CLIENT_ID);

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: home,
    XDG_RUNTIME_DIR: dirs.run,
    XDG_CONFIG_HOME: configHome,
    XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache,
    TMPDIR: dirs.tmp,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_CONF: containersConf,
    REGISTRY_AUTH_FILE: authFile,
  };
  const skopeoGlobal = [
    '--policy',
    policy,
    '--registries.d',
    dirs.registriesD,
    '--tmpdir',
    dirs.tmp,
  ];
  const podmanGlobal = [
    ...['--root', dirs.root, '--runroot', dirs.runroot, '--storage-driver', 'vfs'],
    ...['--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--tmpdir', dirs.libpodTmp],
  ];

  return {
    dir,
    env,
    path: (name) => join(dir, name),
    skopeo: (args) => run('skopeo', [...skopeoGlobal, ...args], env, dir),
    podman: (args) => run('podman', [...podmanGlobal, ...args], env, dir),
    close: async () => {
      killPodmanPause(dirs.libpodTmp);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Ends the rootless podman pause process this sandbox started (by its recorded pid). */
function killPodmanPause(libpodTmp: string): void {
  let pid: number;
  try {
    pid = Number(readFileSync(join(libpodTmp, 'pause.pid'), 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

const NO_TLS = ['--src-tls-verify=false', '--dest-tls-verify=false'];

/** `skopeo copy` between any transports, TLS verification off for plain-HTTP registries. */
export function skopeoCopy(
  sb: ClientSandbox,
  src: string,
  dest: string,
  extra: string[] = [],
): Promise<ExecResult> {
  return sb.skopeo(['copy', ...NO_TLS, '--retry-times', '0', ...extra, src, dest]);
}

/** `skopeo inspect --raw`: the manifest bytes exactly as the registry served them. */
export async function skopeoInspectRaw(sb: ClientSandbox, ref: string): Promise<Buffer> {
  const { stdout } = await sb.skopeo(['inspect', '--tls-verify=false', '--raw', ref]);
  return Buffer.from(stdout, 'utf8');
}

/** What `skopeo inspect` prints (the fields the tests look at). */
export interface SkopeoInspect {
  Name: string;
  Digest: string;
  Tag?: string;
  RepoTags: string[];
  Architecture: string;
  Os: string;
  Layers: string[];
  LayersData?: { MIMEType: string; Digest: string; Size: number }[];
}

export async function skopeoInspect(
  sb: ClientSandbox,
  ref: string,
  extra: string[] = [],
): Promise<SkopeoInspect> {
  const { stdout } = await sb.skopeo(['inspect', '--tls-verify=false', ...extra, ref]);
  return JSON.parse(stdout) as SkopeoInspect;
}

export async function skopeoListTags(sb: ClientSandbox, repoRef: string): Promise<string[]> {
  const { stdout } = await sb.skopeo(['list-tags', '--tls-verify=false', repoRef]);
  return (JSON.parse(stdout) as { Tags: string[] }).Tags;
}

export async function skopeoDelete(sb: ClientSandbox, ref: string): Promise<void> {
  await sb.skopeo(['delete', '--tls-verify=false', ref]);
}

/** `skopeo --version` / `podman --version` first lines, for reports. */
export async function clientVersions(sb: ClientSandbox): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, exec] of [
    ['skopeo', sb.skopeo],
    ['podman', sb.podman],
  ] as const) {
    try {
      out[name] = (await exec(['--version'])).stdout.trim();
    } catch (err) {
      out[name] = `unavailable: ${(err as Error).message}`;
    }
  }
  return out;
}
