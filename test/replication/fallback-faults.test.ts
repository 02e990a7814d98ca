/**
 * A replica's fallback pull under faults (issue 10 §8): it must finish or fail, never hang.
 *
 * The primary is a real `meridian serve` child process, so it can be SIGKILLed or SIGSTOPped
 * while a replica (in-process) streams a blob from it to a client; one replica's storage is a
 * small tmpfs, so its copy of a fallback blob fails with a real ENOSPC mid-stream.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RunningNode } from '@meridian/registry';
import { loadConfig, NodeConfigSchema } from '../../packages/cli/src/config';
import { serve } from '../../packages/cli/src/serve';
import { ociErrors, RegistryClient } from '../helpers/http';
import { randomBlob, type ImageBlob } from '../helpers/images';
import { freePort } from '../helpers/ports';
import { startRedis, type TestRedis } from '../helpers/redis';
import { ended, waitFor } from '../helpers/wait';

const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');
const MiB = 1024 * 1024;
const STALL_MS = 2000;
const SUDO = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
const UPSTREAM_FAILURES = 'meridian_replica_fallback_upstream_failures_total';

interface Pull {
  status: number;
  received: number;
  /** `complete`: every byte of Content-Length arrived; `aborted`: the connection was cut. */
  outcome: 'complete' | 'aborted';
  digest: string;
}

/**
 * GETs a blob, reading it as a client would. `pauseAt`: stop reading after that many bytes and
 * call `whilePaused` (the fault), then read on.
 */
function pull(
  url: string,
  opts: { pauseAt?: number; whilePaused?: () => Promise<void> } = {},
): Promise<Pull> {
  return new Promise((done, fail) => {
    get(url, (res) => {
      const hash = createHash('sha256');
      let received = 0;
      let paused = false;
      const expected = Number(res.headers['content-length']);
      const finish = (): void =>
        done({
          status: res.statusCode ?? 0,
          received,
          outcome: received === expected && res.complete ? 'complete' : 'aborted',
          digest: `sha256:${hash.digest('hex')}`,
        });
      res.on('data', (c: Buffer) => {
        hash.update(c);
        received += c.length;
        if (opts.pauseAt !== undefined && !paused && received >= opts.pauseAt) {
          paused = true;
          res.pause();
          void opts.whilePaused?.().then(() => res.resume(), fail);
        }
      });
      res.on('error', () => {}); // 'aborted' ends in 'close' below
      res.on('close', finish);
    }).on('error', fail);
  });
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('replica fallback under faults', () => {
  let dir: string;
  let tmpfs: string;
  let mounted = false;
  let redis: TestRedis;
  let primary: ChildProcess | undefined;
  let primaryUrl: string;
  let replicaUrl: string;
  let fullReplicaUrl: string;
  const replicas: RunningNode[] = [];
  const repo = 'faults/app';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-faults-'));
    tmpfs = join(dir, 'full');
    mkdirSync(tmpfs);
    // A disk that fills: an 8 MiB tmpfs (needs root, or passwordless sudo as in CI).
    execFileSync(SUDO[0] ?? 'mount', [
      ...SUDO.slice(1),
      ...(SUDO.length ? ['mount'] : []),
      '-t',
      'tmpfs',
      '-o',
      'size=8m',
      'tmpfs',
      tmpfs,
    ]);
    mounted = true;
    redis = await startRedis();
    const [p, r, f] = [await freePort(), await freePort(), await freePort()];
    primaryUrl = `http://127.0.0.1:${p}`;
    replicaUrl = `http://127.0.0.1:${r}`;
    fullReplicaUrl = `http://127.0.0.1:${f}`;
    const cluster = {
      regions: [
        { name: 'eastus', role: 'primary', endpoint: primaryUrl, storage: join(dir, 'east') },
        { name: 'westeurope', role: 'replica', endpoint: replicaUrl, storage: join(dir, 'west') },
        { name: 'southeastasia', role: 'replica', endpoint: fullReplicaUrl, storage: tmpfs },
      ],
      redis: redis.url,
      replication: { prefix: `f${Math.random().toString(36).slice(2, 8)}` },
      auth: { enabled: false },
      log: { level: process.env.MERIDIAN_TEST_LOG ?? 'silent' },
    };
    const primaryConfig = join(dir, 'primary.json');
    writeFileSync(primaryConfig, JSON.stringify(cluster));
    const configFile = join(dir, 'replicas.json');
    writeFileSync(
      configFile,
      JSON.stringify({ ...cluster, fallback: { stallTimeoutMs: STALL_MS } }),
    );
    primary = spawn(
      process.execPath,
      [CLI, 'serve', '--config', primaryConfig, '--region', 'eastus'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    await waitFor(async () => (await fetch(`${primaryUrl}/readyz`)).ok, 'the primary to start');
    const config = loadConfig(NodeConfigSchema, { file: configFile, env: {}, checkRegion: false });
    for (const region of ['westeurope', 'southeastasia'])
      replicas.push(await serve({ ...config, region }));
  });

  afterAll(async () => {
    if (primary && primary.exitCode === null && primary.signalCode === null) {
      primary.kill('SIGCONT');
      primary.kill('SIGKILL');
    }
    for (const r of replicas) await r.close();
    await redis?.stop();
    if (mounted)
      execFileSync(SUDO[0] ?? 'umount', [
        ...SUDO.slice(1),
        ...(SUDO.length ? ['umount'] : []),
        tmpfs,
      ]);
    rmSync(dir, { recursive: true, force: true });
  });

  async function pushToPrimary(size: number): Promise<ImageBlob> {
    const blob = randomBlob(size);
    const res = await new RegistryClient(primaryUrl).uploadBlob(repo, blob);
    expect(res.status).toBe(201);
    return blob;
  }

  it('serves a fallback blob in full from the primary when the local disk fills mid-copy', async () => {
    const blob = await pushToPrimary(20 * MiB);
    const before = await metric(fullReplicaUrl, 'meridian_replica_fallback_copy_failures_total');
    const got = await ended(
      pull(`${fullReplicaUrl}/v2/${repo}/blobs/${blob.digest}`),
      30_000,
      'pull',
    );
    expect(got).toMatchObject({ status: 200, outcome: 'complete', digest: blob.digest });
    expect(got.received).toBe(20 * MiB);
    expect(await metric(fullReplicaUrl, 'meridian_replica_fallback_copy_failures_total')).toBe(
      before + 1,
    );
    // The failed copy left nothing behind on the full disk, and a retry is served again.
    await waitFor(
      async () => Number(execFileSync('du', ['-sk', tmpfs]).toString().split('\t')[0]) < 1024,
      'the temp file to go',
    );
    const again = await ended(
      pull(`${fullReplicaUrl}/v2/${repo}/blobs/${blob.digest}`),
      30_000,
      'retry',
    );
    expect(again).toMatchObject({ status: 200, outcome: 'complete', digest: blob.digest });
  });

  it('aborts the client when the primary stops sending mid-blob (stall timeout), not hang', async () => {
    const blob = await pushToPrimary(48 * MiB);
    const failuresBefore = await metric(replicaUrl, UPSTREAM_FAILURES);
    let stopped = false;
    const got = await ended(
      pull(`${replicaUrl}/v2/${repo}/blobs/${blob.digest}`, {
        // The replica's fill reads the primary at its own pace, not the client's: the fault
        // comes as the first bytes arrive, while the primary is still sending.
        pauseAt: 1,
        whilePaused: async () => {
          primary!.kill('SIGSTOP');
          stopped = true;
        },
      }),
      30_000,
      'pull from a hung primary',
    ).finally(() => primary!.kill('SIGCONT'));
    expect(got.status).toBe(200);
    expect(got.outcome).toBe('aborted');
    expect(got.received).toBeLessThan(48 * MiB);
    expect(stopped).toBe(true);
    expect(await metric(replicaUrl, UPSTREAM_FAILURES)).toBe(failuresBefore + 1);
  });

  it('aborts the client at once when the primary is killed mid-blob; a retry gets a clean 503', async () => {
    const blob = await pushToPrimary(48 * MiB);
    const got = await ended(
      pull(`${replicaUrl}/v2/${repo}/blobs/${blob.digest}`, {
        pauseAt: 1, // as the first bytes arrive, while the primary is still sending (above)
        whilePaused: async () => {
          const exited = new Promise((r) => primary!.once('exit', r));
          primary!.kill('SIGKILL');
          await exited;
        },
      }),
      20_000,
      'pull from a killed primary',
    );
    expect(got.status).toBe(200);
    expect(got.outcome).toBe('aborted');
    expect(got.received).toBeLessThan(48 * MiB);
    // Nothing half-copied is served: the replica has no copy and says the primary is gone.
    const retry = await new RegistryClient(replicaUrl).get(`/v2/${repo}/blobs/${blob.digest}`);
    expect(retry.status).toBe(503);
    expect(ociErrors(retry)[0]).toMatchObject({ code: 'UNAVAILABLE' });
  });
});
