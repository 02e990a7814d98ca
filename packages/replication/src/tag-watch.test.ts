import type { Logger } from 'pino';
import type { TagChange } from './change-feed';
import type { TagWatch as TagWatchClass } from './tag-watch';

/**
 * TagWatch decides when a replica may trust its own copy of a tag. These tests drive its public
 * API (start, check, latestChange, connected) against an in-memory stand-in for the few Redis
 * commands it uses (INFO, SET NX/GET in a MULTI, GET, HGETALL, SUBSCRIBE and the subscriber's
 * events), so the freshness rules run with no server. The real Redis path is covered by the
 * cluster tests in test/.
 */
interface FakeServer {
  runId: string;
  down: boolean;
  kv: Map<string, string>;
  hashes: Map<string, Map<string, string>>;
  subscribers: Set<import('node:events').EventEmitter>;
}

jest.mock('ioredis', () => {
  const { EventEmitter } = jest.requireActual<typeof import('node:events')>('node:events');
  const server: FakeServer = {
    runId: 'run1',
    down: false,
    kv: new Map(),
    hashes: new Map(),
    subscribers: new Set(),
  };
  const reachable = () => {
    if (server.down) throw new Error('connect ECONNREFUSED');
  };
  class Redis extends EventEmitter {
    status = 'connecting';
    async subscribe(): Promise<number> {
      reachable();
      server.subscribers.add(this);
      this.status = 'ready';
      return 1;
    }
    async info(): Promise<string> {
      reachable();
      return `# Server\r\nrun_id:${server.runId}\r\n`;
    }
    async get(key: string): Promise<string | null> {
      reachable();
      return server.kv.get(key) ?? null;
    }
    async hgetall(key: string): Promise<Record<string, string>> {
      reachable();
      return Object.fromEntries(server.hashes.get(key) ?? []);
    }
    multi() {
      const ops: (() => unknown)[] = [];
      const m = {
        set(key: string, value: string, nx?: string) {
          ops.push(() => {
            if (nx === 'NX' && server.kv.has(key)) return null;
            server.kv.set(key, value);
            return 'OK';
          });
          return m;
        },
        get(key: string) {
          ops.push(() => server.kv.get(key) ?? null);
          return m;
        },
        async exec() {
          reachable();
          return ops.map((op) => [null, op()]);
        },
      };
      return m;
    }
    disconnect(): void {
      server.subscribers.delete(this);
      this.status = 'end';
    }
  }
  return { Redis, server };
});

// Required after jest.mock, so the watch is built on the stand-in.
/* eslint-disable @typescript-eslint/no-require-imports */
const { TagWatch } = require('./tag-watch') as { TagWatch: typeof TagWatchClass };
const { latestTagsKey, tagChannel } = require('./change-feed') as typeof import('./change-feed');
const { generationKey, reconciledKey } = require('./redis-epoch') as typeof import('./redis-epoch');
const { server } = jest.requireMock<{ server: FakeServer }>('ioredis');
/* eslint-enable @typescript-eslint/no-require-imports */

const PREFIX = 'm';
const REGION = 'eu';
const log = { warn: () => {}, debug: () => {} } as unknown as Logger;
const d = (c: string) => `sha256:${c.repeat(64)}`;

/** What the reconciler records when it completes a run of this region in the current epoch. */
function reconciled(): void {
  // The reconciler reads the epoch the same way: creating the generation key when it is missing.
  if (!server.kv.has(generationKey(PREFIX))) server.kv.set(generationKey(PREFIX), 'gen1');
  const epoch = `${server.runId}/${server.kv.get(generationKey(PREFIX))}`;
  server.kv.set(reconciledKey(PREFIX, REGION), epoch);
}

/** What the primary's change feed does: record as latest, and publish to every subscriber. */
function announce(change: TagChange): void {
  const key = latestTagsKey(PREFIX);
  const hash = server.hashes.get(key) ?? new Map<string, string>();
  hash.set(`${change.repository}:${change.tag}`, JSON.stringify(change));
  server.hashes.set(key, hash);
  for (const sub of server.subscribers)
    sub.emit('message', tagChannel(PREFIX), JSON.stringify(change));
}

/** The subscriber connection the watch opened (one at a time in these tests). */
function subscriber(): import('node:events').EventEmitter {
  const [sub] = server.subscribers;
  if (!sub) throw new Error('the watch is not subscribed');
  return sub;
}

describe('TagWatch freshness', () => {
  let watch: TagWatchClass;
  beforeEach(async () => {
    Object.assign(server, { runId: 'run1', down: false });
    server.kv.clear();
    server.hashes.clear();
    server.subscribers.clear();
    // pollMs far away: the tests call check() themselves.
    watch = new TagWatch('redis://fake', PREFIX, log, REGION, 3_600_000);
  });
  afterEach(async () => {
    await watch.close();
  });

  it('treats every tag as behind until this region was reconciled in the current epoch', async () => {
    announce({ repository: 'app', tag: 'v1', digest: d('a'), seq: 10 });
    await watch.start();
    expect(watch.connected).toBe(false);
    expect(watch.latestChange('app', 'v1')?.seq).toBe(Number.MAX_SAFE_INTEGER);
    expect(watch.latestChange('app', 'never-announced')?.seq).toBe(Number.MAX_SAFE_INTEGER);

    reconciled();
    await watch.check();
    expect(watch.connected).toBe(true);
    expect(watch.latestChange('app', 'v1')).toEqual({
      repository: 'app',
      tag: 'v1',
      digest: d('a'),
      seq: 10,
    });
    expect(watch.latestChange('app', 'never-announced')).toBeUndefined();
  });

  it('keeps the newest change per tag: a late, older announcement never wins', async () => {
    reconciled();
    await watch.start();
    expect(watch.connected).toBe(true);

    announce({ repository: 'app', tag: 'v1', digest: d('b'), seq: 20, at: Date.now() });
    expect(watch.latestChange('app', 'v1')?.digest).toBe(d('b'));
    announce({ repository: 'app', tag: 'v1', digest: d('a'), seq: 19, at: Date.now() });
    expect(watch.latestChange('app', 'v1')).toMatchObject({ digest: d('b'), seq: 20 });
    // A deletion is announced without a digest and a higher seq: the tag is behind, and gone.
    announce({ repository: 'app', tag: 'v1', seq: 21 });
    expect(watch.latestChange('app', 'v1')).toEqual({ repository: 'app', tag: 'v1', seq: 21 });
    // Tags are per repository.
    expect(watch.latestChange('other', 'v1')).toBeUndefined();
    // A malformed message is ignored.
    subscriber().emit('message', tagChannel(PREFIX), '{not json');
    expect(watch.latestChange('app', 'v1')?.seq).toBe(21);
  });

  it.each([
    ['restarts (a new run id)', () => (server.runId = 'run2')],
    ['is flushed (the generation key is gone)', () => server.kv.clear()],
  ])(
    'treats every tag as behind again when Redis %s, until the region is reconciled anew',
    async (_what, lose) => {
      reconciled();
      await watch.start();
      expect(watch.connected).toBe(true);

      lose();
      await watch.check();
      expect(watch.connected).toBe(false);
      expect(watch.latestChange('app', 'v1')?.seq).toBe(Number.MAX_SAFE_INTEGER);
      await watch.check(); // the old epoch's reconcile does not count
      expect(watch.connected).toBe(false);

      announce({ repository: 'app', tag: 'v1', digest: d('c'), seq: 30 });
      reconciled();
      await watch.check();
      expect(watch.connected).toBe(true);
      expect(watch.latestChange('app', 'v1')?.digest).toBe(d('c'));
    },
  );

  it('treats every tag as behind while the subscription is down, and catches up from the hash', async () => {
    reconciled();
    await watch.start();
    const sub = subscriber();
    sub.emit('close');
    expect(watch.connected).toBe(false);
    expect(watch.latestChange('app', 'v1')?.seq).toBe(Number.MAX_SAFE_INTEGER);

    // Announced while the subscriber was away: only the latest-tags hash has it.
    server.subscribers.delete(sub);
    announce({ repository: 'app', tag: 'v1', digest: d('d'), seq: 40 });
    server.subscribers.add(sub);
    sub.emit('ready');
    await watch.check();
    expect(watch.connected).toBe(true);
    expect(watch.latestChange('app', 'v1')).toMatchObject({ digest: d('d'), seq: 40 });
  });

  it('treats every tag as behind while Redis cannot be reached', async () => {
    reconciled();
    await watch.start();
    expect(watch.connected).toBe(true);
    server.down = true;
    await watch.check();
    expect(watch.connected).toBe(false);
    expect(watch.latestChange('app', 'v1')?.seq).toBe(Number.MAX_SAFE_INTEGER);
  });
});
