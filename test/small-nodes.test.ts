/**
 * Small nodes (issue 18, ADR 0028): a node with no Redis configured loads neither BullMQ nor
 * ioredis (nor what they pull in), not at start and not while it serves a push and a pull;
 * they are loaded on first use, by a node that has Redis. The built CLI runs `serve` with a
 * preload (`--require`, written here) that, on SIGUSR2, writes the paths of every module the
 * process has loaded (`require.cache`) to a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './helpers/cli';
import { RegistryClient } from './helpers/http';
import { image } from './helpers/images';
import { freePort } from './helpers/ports';
import { startRedis, type TestRedis } from './helpers/redis';
import { waitFor } from './helpers/wait';

const PROBE = `
const { renameSync, writeFileSync } = require('node:fs');
process.on('SIGUSR2', () => {
  const out = process.env.LOADED_MODULES_FILE;
  writeFileSync(out + '.tmp', Object.keys(require.cache).join('\\n'));
  renameSync(out + '.tmp', out);
});
`;

/** Paths of the modules (of `node_modules`) that only a node with Redis needs. */
const REDIS_ONLY = /\/node_modules\/(bullmq|ioredis|msgpackr|cron-parser|luxon)\//;

interface Node {
  process: ChildProcess;
  url: string;
}

describe('small nodes: BullMQ and ioredis only where Redis is configured', () => {
  let dir: string;
  let started: ChildProcess[] = [];
  let redis: TestRedis | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-small-'));
    writeFileSync(join(dir, 'probe.js'), PROBE);
  });
  afterEach(async () => {
    await Promise.all(started.map(stop));
    started = [];
    await redis?.stop();
    redis = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** `meridian serve` on a free loopback port, with the probe; resolves once it answers. */
  async function serve(extra: string[]): Promise<Node> {
    const listen = `127.0.0.1:${await freePort()}`;
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--listen', listen, '--storage', join(dir, 'data'), ...extra],
      {
        env: {
          PATH: process.env.PATH ?? '',
          NODE_OPTIONS: `--require ${join(dir, 'probe.js')}`,
          LOADED_MODULES_FILE: join(dir, 'modules.txt'),
          MERIDIAN_AUTH_ENABLED: 'false',
          MERIDIAN_LOG_LEVEL: process.env.MERIDIAN_TEST_LOG ?? 'error',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    started.push(child);
    const url = `http://${listen}`;
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}`);
      return (await fetch(`${url}/healthz`)).ok;
    }, 'the node');
    return { process: child, url };
  }

  /** Pushes an image and pulls it back: the paths a node serves, not only its start. */
  async function pushAndPull(url: string): Promise<void> {
    const client = new RegistryClient(url);
    const img = image();
    await client.pushImage('small/app', 'v1', img.blobs, img.manifest);
    const m = await client.get('/v2/small/app/manifests/v1', {
      headers: { Accept: img.manifest.mediaType },
    });
    expect(m.status).toBe(200);
    const b = await client.get(`/v2/small/app/blobs/${img.layers[0]!.digest}`);
    expect(b.status).toBe(200);
  }

  /** What the node has loaded so far: every `require.cache` path, asked for by SIGUSR2. */
  async function loadedModules(n: Node): Promise<string[]> {
    const file = join(dir, 'modules.txt');
    rmSync(file, { force: true });
    process.kill(n.process.pid!, 'SIGUSR2');
    await waitFor(async () => existsSync(file), 'the probe to write the module list');
    return readFileSync(file, 'utf8').split('\n');
  }

  it('a node without Redis loads neither, at start or serving a push and a pull', async () => {
    const node = await serve([]);
    await pushAndPull(node.url);
    const modules = await loadedModules(node);
    // The probe saw the node's own code and its HTTP stack (it is not an empty list).
    expect(modules).toContainEqual(expect.stringMatching(/\/packages\/cli\/dist\/serve\.js$/));
    expect(modules).toContainEqual(expect.stringMatching(/\/node_modules\/express\//));
    expect(modules.filter((m) => REDIS_ONLY.test(m))).toEqual([]);
  });

  it('a node with Redis loads both (the probe sees them)', async () => {
    redis = await startRedis();
    const node = await serve(['--redis', redis.url]);
    await pushAndPull(node.url);
    const modules = await loadedModules(node);
    expect(modules).toContainEqual(expect.stringMatching(/\/node_modules\/bullmq\//));
    expect(modules).toContainEqual(expect.stringMatching(/\/node_modules\/ioredis\//));
  });
});

/** SIGTERM to the node's PID, SIGKILL if it has not exited within 10 s. */
async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  process.kill(p.pid!, 'SIGTERM');
  const timer = setTimeout(() => {
    if (p.exitCode === null && p.signalCode === null) process.kill(p.pid!, 'SIGKILL');
  }, 10_000);
  await exited;
  clearTimeout(timer);
}
