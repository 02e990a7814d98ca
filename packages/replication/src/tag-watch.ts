import type { Redis } from 'ioredis';
import { createRedis, type RedisConnection } from '@meridian/redis';
import type { Logger } from 'pino';
import { latestTagsKey, tagChannel, type TagChange } from './change-feed';
import { tagAnnouncementSeconds, tagWatchUnsure } from './metrics';
import { reconciledKey, redisEpoch } from './redis-epoch';

/** What `latestChange` answers while the node cannot know which tags are behind: all of them. */
const EVERY_TAG_BEHIND: TagChange = Object.freeze({
  repository: '',
  tag: '',
  seq: Number.MAX_SAFE_INTEGER,
});

/**
 * On a replica: hears every tag change the primary commits (Redis pub/sub, primed from the
 * latest-tags hash) so the node can tell when its own copy of a tag is behind.
 *
 * What it heard is only complete while it is subscribed *and* Redis still holds what was
 * announced before. So it watches the Redis epoch (server run id + generation key, see
 * `redis-epoch.ts`): after a disconnect, a restart or a flush it answers "behind" for every tag
 * — the node resolves tags at the primary, and serves its own copy only when the primary is
 * unreachable (availability first, counted) — until a reconcile of this region has completed
 * in the current epoch (the reconciler re-announces every tag that differs) and the watch has
 * re-read the latest-tags hash.
 */
export class TagWatch {
  private readonly latest = new Map<string, TagChange>();
  private sub: Redis | undefined;
  private client: Redis | undefined;
  private timer: NodeJS.Timeout | undefined;
  private subscribed = false;
  private trusted = false;
  private epoch: string | undefined;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly redisUrl: RedisConnection,
    private readonly prefix: string,
    private readonly log: Logger,
    /** This replica's region: its reconcile is what makes the watch complete again. */
    private readonly region: string,
    private readonly pollMs = 500,
  ) {}

  async start(): Promise<void> {
    this.client = createRedis(this.redisUrl, {
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
    });
    this.client.on('error', () => {}); // reported by the subscriber and by `check`
    const sub = createRedis(this.redisUrl, { maxRetriesPerRequest: null });
    this.sub = sub;
    sub.on('message', (_channel: string, message: string) => this.record(message, true));
    sub.on('ready', () => {
      this.subscribed = true;
      void this.check();
    });
    sub.on('close', () => this.distrust());
    sub.on('error', (err) => {
      this.distrust();
      this.log.warn({ err: err.message }, 'tag watch: redis error');
    });
    await sub.subscribe(tagChannel(this.prefix));
    this.subscribed = sub.status === 'ready';
    this.timer = setInterval(() => void this.check(), this.pollMs);
    this.timer.unref();
    await this.check();
  }

  /** Whether the node knows exactly which tags are behind (else it treats them all as behind). */
  get connected(): boolean {
    return this.subscribed && this.trusted;
  }

  /** The newest change the primary announced for a tag, if any. */
  latestChange(repository: string, tag: string): TagChange | undefined {
    if (!this.connected) return EVERY_TAG_BEHIND;
    return this.latest.get(`${repository}:${tag}`);
  }

  private distrust(): void {
    this.subscribed = false;
    this.trusted = false;
    tagWatchUnsure.set({ region: this.region }, 1);
  }

  /** Notices a new epoch; trusts again once this region was reconciled in it. One at a time. */
  check(): Promise<void> {
    this.checking ??= this.checkOnce().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      const epoch = await redisEpoch(client, this.prefix);
      if (epoch !== this.epoch) {
        if (this.epoch !== undefined)
          this.log.warn(
            { region: this.region },
            'tag watch: Redis restarted or lost its data; resolving every tag at the primary until this region is reconciled',
          );
        this.epoch = epoch;
        this.trusted = false;
      }
      if (this.trusted || !this.subscribed) {
        tagWatchUnsure.set({ region: this.region }, this.connected ? 0 : 1);
        return;
      }
      if ((await client.get(reconciledKey(this.prefix, this.region))) !== epoch) {
        tagWatchUnsure.set({ region: this.region }, 1);
        return;
      }
      // Subscribed before reading the hash: nothing announced from now on can be missed.
      const all = await client.hgetall(latestTagsKey(this.prefix));
      for (const v of Object.values(all)) this.record(v, false);
      if ((await redisEpoch(client, this.prefix)) !== epoch) return; // lost again meanwhile
      this.trusted = this.subscribed;
      tagWatchUnsure.set({ region: this.region }, this.connected ? 0 : 1);
    } catch (err) {
      this.trusted = false;
      tagWatchUnsure.set({ region: this.region }, 1);
      this.log.debug({ err: (err as Error).message }, 'tag watch: cannot check Redis');
    }
  }

  private record(message: string, live: boolean): void {
    try {
      const c = JSON.parse(message) as TagChange;
      const key = `${c.repository}:${c.tag}`;
      const prev = this.latest.get(key);
      if (!prev || prev.seq < c.seq) this.latest.set(key, c);
      if (live && typeof c.at === 'number')
        tagAnnouncementSeconds.observe(
          { region: this.region },
          Math.max(0, Date.now() - c.at) / 1000,
        );
    } catch {
      // ignore malformed messages
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.sub?.disconnect();
    this.client?.disconnect();
    await this.checking;
  }
}
