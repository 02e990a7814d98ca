import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { latestTagsKey, tagChannel, type TagChange } from './change-feed';

/**
 * On a replica: hears every tag change the primary commits (Redis pub/sub, primed from the
 * latest-tags hash on connect) so the node can tell when its own copy of a tag is behind.
 */
export class TagWatch {
  private readonly latest = new Map<string, TagChange>();
  private sub: Redis | undefined;
  private ready = false;

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const sub = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
    this.sub = sub;
    sub.on('message', (_channel: string, message: string) => this.record(message));
    sub.on('ready', () => void this.prime());
    sub.on('end', () => (this.ready = false));
    sub.on('error', (err) => {
      this.ready = false;
      this.log.warn({ err: err.message }, 'tag watch: redis error');
    });
    await sub.subscribe(tagChannel(this.prefix));
  }

  /** Whether pub/sub is connected (else the node serves what it has: availability first). */
  get connected(): boolean {
    return this.ready;
  }

  /** The newest change the primary announced for a tag, if any. */
  latestChange(repository: string, tag: string): TagChange | undefined {
    return this.latest.get(`${repository}:${tag}`);
  }

  private async prime(): Promise<void> {
    const client = new Redis(this.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      const all = await client.hgetall(latestTagsKey(this.prefix));
      for (const v of Object.values(all)) this.record(v);
      this.ready = true;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'tag watch: cannot load latest tags');
    } finally {
      client.disconnect();
    }
  }

  private record(message: string): void {
    try {
      const c = JSON.parse(message) as TagChange;
      const key = `${c.repository}:${c.tag}`;
      const prev = this.latest.get(key);
      if (!prev || prev.seq < c.seq) this.latest.set(key, c);
    } catch {
      // ignore malformed messages
    }
  }

  async close(): Promise<void> {
    this.sub?.disconnect();
  }
}
