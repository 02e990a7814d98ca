import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports';
import type { TestRedis } from './redis';
import { waitFor } from './wait';

/** A master, a replica and Sentinels watching them, all on loopback. */
export interface TestSentinelRedis extends TestRedis {
  /** What Meridian's `redis` config says: the Sentinels and the master's name. */
  connection: { sentinels: string[]; name: string };
  /** Ports of the two redis-servers (the first starts as the master). */
  serverPorts: [number, number];
  /** The master's port, as the Sentinels see it now. */
  masterPort(): Promise<number>;
  /**
   * `SENTINEL FAILOVER`: the replica is promoted and the old master demoted. Resolves once the
   * Sentinels name the new master and it answers as one (ms taken).
   */
  failover(): Promise<number>;
}

const NAME = 'meridian';

function start(bin: string, args: string[]): ChildProcess {
  return spawn(bin, args, { stdio: 'ignore' });
}

async function ping(port: number): Promise<void> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  try {
    await r.connect();
    await r.ping();
  } finally {
    r.disconnect();
  }
}

async function call(port: number, ...args: string[]): Promise<unknown> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  try {
    await r.connect();
    return await r.call(args[0]!, ...args.slice(1));
  } finally {
    r.disconnect();
  }
}

/**
 * Starts Debian's `redis-server` twice (master + replica) and `redis-sentinel` three times
 * (quorum 2, down-after 1 s), each on a free loopback port in a temp directory.
 */
export async function startSentinelRedis(): Promise<TestSentinelRedis> {
  for (const bin of ['redis-server', 'redis-sentinel'])
    if (spawnSync(bin, ['--version']).status !== 0)
      throw new Error(`${bin} is not installed (Debian packages: redis-server redis-sentinel)`);
  const dir = mkdtempSync(join(tmpdir(), 'meridian-sentinel-'));
  const procs: ChildProcess[] = [];
  const master = await freePort();
  const replica = await freePort();
  const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  procs.push(start('redis-server', ['--port', String(master), ...common]));
  procs.push(
    start('redis-server', [
      '--port',
      String(replica),
      ...common,
      '--replicaof',
      '127.0.0.1',
      String(master),
    ]),
  );
  await waitFor(
    async () =>
      await ping(master).then(
        () => true,
        () => false,
      ),
    'redis master',
    10_000,
  );
  await waitFor(
    async () =>
      String(await call(replica, 'INFO', 'replication').catch(() => '')).includes(
        'master_link_status:up',
      ),
    'redis replica in sync',
    15_000,
  );
  const sentinels: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${i}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${NAME} 127.0.0.1 ${master} 2`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 10000`,
        `sentinel parallel-syncs ${NAME} 1`,
        '',
      ].join('\n'),
    );
    procs.push(start('redis-sentinel', [conf]));
    sentinels.push(port);
  }
  const masterPort = async (): Promise<number> => {
    for (const s of sentinels) {
      const addr = (await call(s, 'SENTINEL', 'get-master-addr-by-name', NAME).catch(
        () => null,
      )) as [string, string] | null;
      if (addr) return Number(addr[1]);
    }
    throw new Error('no Sentinel answers');
  };
  // Every Sentinel knows the master and its replica (learned from the master's INFO).
  await waitFor(
    async () => {
      for (const s of sentinels) {
        const replicas = (await call(s, 'SENTINEL', 'replicas', NAME).catch(() => [])) as unknown[];
        if (replicas.length !== 1) return false;
      }
      return true;
    },
    'the Sentinels to find the replica',
    20_000,
  );
  const stop = async () => {
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    url: `redis://127.0.0.1:${master}`,
    port: master,
    process: procs[0]!,
    stop,
    connection: { sentinels: sentinels.map((p) => `127.0.0.1:${p}`), name: NAME },
    serverPorts: [master, replica],
    masterPort,
    failover: async () => {
      const before = await masterPort();
      const t0 = Date.now();
      await call(sentinels[0]!, 'SENTINEL', 'FAILOVER', NAME);
      await waitFor(
        async () => {
          const now = await masterPort().catch(() => before);
          if (now === before) return false;
          const info = String(await call(now, 'INFO', 'replication').catch(() => ''));
          return info.includes('role:master');
        },
        'the failover',
        30_000,
      );
      return Date.now() - t0;
    },
  };
}
