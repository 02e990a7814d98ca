import type { Redis } from 'ioredis';

/**
 * Delivery order per (webhook, repository): a sorted set of the deliveries not finished yet,
 * scored by their event's journal sequence. Only the oldest is sent; the others wait (delayed
 * jobs) until it is delivered or dead-lettered, so a receiver that fails for a while still gets
 * a repository's events in commit order, while other repositories and webhooks go on.
 */
export class RepositoryOrder {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** How long an idle order set lives (ms): past the retry horizon. */
    private readonly ttlMs: number,
  ) {}

  private key(webhook: string, repository: string): string {
    return `${this.prefix}:webhooks:order:${webhook}:${repository}`;
  }

  /** Puts deliveries in their (webhook, repository) lines, in one round trip. */
  async addAll(
    items: readonly { webhook: string; repository: string; id: string; sequence: number }[],
  ): Promise<void> {
    if (items.length === 0) return;
    const p = this.redis.pipeline();
    for (const { webhook, repository, id, sequence } of items) {
      const key = this.key(webhook, repository);
      p.zadd(key, 'NX', sequence, id).pexpire(key, this.ttlMs);
    }
    await p.exec();
  }

  /**
   * 0 when `id` is the oldest unfinished delivery of its (webhook, repository), else how many
   * are ahead of it. Heads that `finished` says are done (or gone) are dropped first.
   */
  async ahead(
    webhook: string,
    repository: string,
    id: string,
    finished: (id: string) => Promise<boolean>,
  ): Promise<number> {
    const key = this.key(webhook, repository);
    for (let i = 0; i < 100; i++) {
      const [head] = await this.redis.zrange(key, '0', '0');
      if (head === undefined || head === id) return 0;
      if (!(await finished(head))) return (await this.redis.zrank(key, id)) ?? 0;
      await this.redis.zrem(key, head);
    }
    return 1;
  }

  /** Takes `id` out of the line; returns the delivery now at its head, if any. */
  async done(webhook: string, repository: string, id: string): Promise<string | undefined> {
    const key = this.key(webhook, repository);
    const [, head] = (await this.redis.multi().zrem(key, id).zrange(key, '0', '0').exec()) ?? [];
    const ids = head?.[1];
    return Array.isArray(ids) && typeof ids[0] === 'string' ? ids[0] : undefined;
  }
}
