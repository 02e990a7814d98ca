import {
  ChangeFeed,
  latestTagsKey,
  tagChannel,
  type ChangeEvent,
  type TagChange,
} from './change-feed';
import type { ReplicationQueues } from './queues';
import type { SyncTarget } from './targets';

/**
 * The feed's two effects, recorded: what it queues through `ReplicationQueues.enqueue` (the
 * de-duplicating Redis path is covered by the integration tests) and the Redis commands of its
 * tag announcement (HSET into the latest-tags hash + PUBLISH, in one MULTI).
 */
function recorder(prefix = 'p') {
  const enqueued: { region: string; target: SyncTarget; committedAt: number }[] = [];
  const hashed: { key: string; field: string; change: TagChange }[] = [];
  const published: { channel: string; change: TagChange }[] = [];
  let execs = 0;
  const multi = {
    hset(key: string, field: string, value: string) {
      hashed.push({ key, field, change: JSON.parse(value) as TagChange });
      return multi;
    },
    publish(channel: string, value: string) {
      published.push({ channel, change: JSON.parse(value) as TagChange });
      return multi;
    },
    async exec() {
      execs++;
      return [];
    },
  };
  const queues = {
    prefix,
    redis: { multi: () => multi },
    async enqueue(region: string, target: SyncTarget, committedAt: number) {
      enqueued.push({ region, target, committedAt });
      return true;
    },
  } as unknown as ReplicationQueues;
  return { queues, enqueued, hashed, published, execs: () => execs };
}

const digest = `sha256:${'a'.repeat(64)}`;

describe('ChangeFeed', () => {
  it('queues one sync per replica region, with the commit time, for each kind of change', async () => {
    const r = recorder();
    const feed = new ChangeFeed(r.queues, ['eu', 'ap']);
    const events: ChangeEvent[] = [
      { type: 'blobCommitted', repository: 'app', digest, at: 1 },
      { type: 'blobMounted', repository: 'app', digest, at: 2 },
      { type: 'blobDeleted', repository: 'app', digest, at: 3 },
      { type: 'manifestPut', repository: 'app', digest, at: 4 },
      { type: 'manifestDeleted', repository: 'app', digest, at: 5 },
      { type: 'tagMoved', repository: 'app', tag: 'v1', digest, seq: 6_000, at: 6 },
      { type: 'tagDeleted', repository: 'app', tag: 'v1', at: 7 },
    ];
    for (const e of events) await feed.onEvent(e);

    const blob = { kind: 'blob', repository: 'app', digest };
    const manifest = { kind: 'manifest', repository: 'app', digest };
    const tag = { kind: 'tag', repository: 'app', tag: 'v1' };
    const expected = [blob, blob, blob, manifest, manifest, tag, tag].flatMap((target, i) =>
      ['eu', 'ap'].map((region) => ({ region, target, committedAt: i + 1 })),
    );
    expect(r.enqueued).toEqual(expected);
  });

  it('queues nothing on a primary without replicas', async () => {
    const r = recorder();
    await new ChangeFeed(r.queues, []).onEvent({
      type: 'manifestPut',
      repository: 'app',
      digest,
      at: 1,
    });
    expect(r.enqueued).toEqual([]);
  });

  it('announces a moved tag with its digest and sequence, as the latest and on the channel', async () => {
    const r = recorder('meridian-x');
    await new ChangeFeed(r.queues, ['eu']).onEvent({
      type: 'tagMoved',
      repository: 'team/app',
      tag: 'latest',
      digest,
      seq: 1_700_000_000_000_123,
      at: 1_700_000_000_000,
    });
    const change: TagChange = {
      repository: 'team/app',
      tag: 'latest',
      digest,
      seq: 1_700_000_000_000_123,
      at: 1_700_000_000_000,
    };
    expect(r.hashed).toEqual([
      { key: latestTagsKey('meridian-x'), field: 'team/app:latest', change },
    ]);
    expect(r.published).toEqual([{ channel: tagChannel('meridian-x'), change }]);
    expect(r.execs()).toBe(1); // one MULTI: a replica never sees the one without the other
  });

  it('announces a deleted tag without a digest, ordered after every move in the same millisecond', async () => {
    const r = recorder();
    const at = 1_700_000_000_000;
    await new ChangeFeed(r.queues, ['eu']).onEvent({
      type: 'tagDeleted',
      repository: 'app',
      tag: 'v1',
      at,
    });
    const [announced] = r.published;
    expect(announced?.change).toEqual({ repository: 'app', tag: 'v1', seq: at * 1000 + 999, at });
    expect(announced?.change).not.toHaveProperty('digest');
    // A move committed in the same millisecond (seq = at * 1000 + n, n < 999) is older.
    expect(announced!.change.seq).toBeGreaterThan(at * 1000 + 998);
    expect(r.hashed.map((h) => h.field)).toEqual(['app:v1']);
  });

  it('announces nothing for blob and manifest changes', async () => {
    const r = recorder();
    const feed = new ChangeFeed(r.queues, ['eu']);
    await feed.onEvent({ type: 'blobCommitted', repository: 'app', digest, at: 1 });
    await feed.onEvent({ type: 'manifestPut', repository: 'app', digest, at: 2 });
    expect(r.published).toEqual([]);
    expect(r.hashed).toEqual([]);
    expect(r.execs()).toBe(0);
  });
});
