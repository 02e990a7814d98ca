import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { S3Store } from '@meridian/storage';
import { freePort } from './ports';

/** Where and how to reach an S3 endpoint. */
export interface S3Endpoint {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface Ceph extends S3Endpoint {
  /** State directory (config, logs, mon store; the OSD too with bluestore). */
  base: string;
  /** Stops the daemons this instance started (only those pids) and removes `base`. */
  stop(): Promise<void>;
}

export const CEPH_INSTALL_HINT =
  'apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw';

/** The scripts docker-compose's S3 containers run too (deploy/ceph/Dockerfile). */
const SCRIPTS = join(__dirname, '..', '..', 'deploy', 'ceph');
const DAEMONS = ['radosgw', 'ceph-mon', 'ceph-osd', 'ceph', 'monmaptool', 'ceph-authtool'];

function onPath(binary: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** True when a single-node Ceph RGW can be started here (`radosgw` and friends on PATH). */
export function s3Available(): boolean {
  return DAEMONS.every(onPath);
}

/**
 * Starts a throwaway single-node Ceph (1 mon + 1 memstore OSD + radosgw, auth off) on free
 * loopback ports, with a fresh S3 user. Takes ~13 s on 2 cores. Call `stop()` when done.
 */
export async function startCeph(
  opts: { objectStore?: 'memstore' | 'bluestore' } = {},
): Promise<Ceph> {
  if (!s3Available()) throw new Error(`Ceph RGW is not installed: ${CEPH_INSTALL_HINT}`);
  const base = mkdtempSync(join(tmpdir(), 'meridian-ceph-'));
  const rgwPort = await freePort();
  let monPort = await freePort();
  while (monPort === rgwPort) monPort = await freePort();
  const accessKeyId = `meridian${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(20).toString('hex');

  const killOnExit = () => killRecorded(base);
  process.once('exit', killOnExit);
  const { code, output } = await run(join(SCRIPTS, 'start-ceph.sh'), {
    BASE: base,
    OBJECTSTORE: opts.objectStore ?? 'memstore',
    RGW_PORT: String(rgwPort),
    MON_PORT: String(monPort),
    S3_ACCESS_KEY: accessKeyId,
    S3_SECRET_KEY: secretAccessKey,
  });
  let stopped = false;
  const stop = async (keepBase = false): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await run(join(SCRIPTS, 'stop-ceph.sh'), { BASE: base });
    killRecorded(base);
    process.removeListener('exit', killOnExit);
    if (!keepBase) rmSync(base, { recursive: true, force: true });
  };
  if (code !== 0) {
    await stop(true);
    throw new Error(
      `Ceph RGW failed to start (exit ${code}); logs kept in ${base}/log\n${output.slice(-3000)}`,
    );
  }
  return {
    endpoint: `http://127.0.0.1:${rgwPort}`,
    accessKeyId,
    secretAccessKey,
    region: 'us-east-1',
    base,
    stop: () => stop(),
  };
}

/** Creates a uniquely named bucket (or `name`) and returns its name. */
export async function newBucket(s3: S3Endpoint, name?: string): Promise<string> {
  const bucket = name ?? `meridian-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  await S3Store.ensureBucket({
    bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  return bucket;
}

/** Last resort (process exit): SIGKILL the pids the start script recorded, and only those. */
function killRecorded(base: string): void {
  for (const daemon of ['rgw', 'osd', 'mon']) {
    try {
      const pid = Number(readFileSync(join(base, `pids.${daemon}`), 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      // not started, or already gone
    }
  }
}

function run(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, output }));
  });
}
