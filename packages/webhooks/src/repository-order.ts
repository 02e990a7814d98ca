import type { ChainableCommander, Redis } from 'ioredis';

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

  /**
   * Puts deliveries in their (webhook, repository) lines, in one round trip. Returns, for each,
   * how many deliveries are ahead of it (0: it is the line's head and may be sent now).
   */
  async addAll(
    items: readonly { webhook: string; repository: string; id: string; sequence: number }[],
  ): Promise<number[]> {
    if (items.length === 0) return [];
    const p = this.redis.pipeline();
    for (const { webhook, repository, id, sequence } of items) {
      const key = this.key(webhook, repository);
      p.zadd(key, 'NX', sequence, id).pexpire(key, this.ttlMs).zrank(key, id);
    }
    const answers = (await p.exec()) ?? [];
    return items.map((_, i) => {
      const rank = answers[i * 3 + 2]?.[1];
      return typeof rank === 'number' ? rank : 0;
    });
  }

  /** Adds the read of the line's head to `pipeline` (parse its answer with `headOf`). */
  head<P extends ChainableCommander>(pipeline: P, webhook: string, repository: string): P {
    pipeline.zrange(this.key(webhook, repository), '0', '0');
    return pipeline;
  }

  /** Adds taking `id` out of its line, then reading the new head, to `pipeline` (two answers). */
  leave<P extends ChainableCommander>(
    pipeline: P,
    webhook: string,
    repository: string,
    id: string,
  ): P {
    const key = this.key(webhook, repository);
    pipeline.zrem(key, id).zrange(key, '0', '0');
    return pipeline;
  }

  headOf(answer: unknown): string | undefined {
    return Array.isArray(answer) && typeof answer[0] === 'string' ? answer[0] : undefined;
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
}
