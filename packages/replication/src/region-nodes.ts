import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';

export const regionNodesGauge = new Gauge({
  name: 'meridian_region_nodes',
  help: 'Nodes of this region that heartbeat in Redis (as this node last saw them; 0 while it cannot tell)',
  labelNames: ['region'] as const,
});

export interface RegionNodesOptions {
  /** How often a node renews its heartbeat and counts its peers. Default 1 000 ms. */
  pollMs?: number;
  /** Called whenever the node's answer to `alone` changes. */
  onChange?: (alone: boolean) => void;
  /** A stable name for this node in listings (default: a random id per process). */
  nodeId?: string;
}

/**
 * Which nodes serve a region (ADR 0024). Every node heartbeats in a Redis sorted set
 * (`<prefix>:nodes:<region>`, member = node id, score = expiry) and counts the live members.
 *
 * `alone` is what lets a node keep per-process state that is only safe with no peer in its
 * region — caching tags and locks between requests, and garbage collection's in-process
 * ContentGuard. It is true only while the last count (at most two polls old) saw this node and
 * nobody else; a node that cannot reach Redis is not alone. A node that joins a region that
 * already has nodes waits two polls before it serves (`start`), so every peer has stopped
 * relying on being alone before the newcomer's first write.
 */
export class RegionNodes {
  readonly nodeId: string;
  private readonly pollMs: number;
  private timer: NodeJS.Timeout | undefined;
  private lastCount = 0;
  private lastOkAt = 0;
  private wasAlone = false;
  private polling: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly region: string,
    private readonly opts: RegionNodesOptions = {},
  ) {
    this.nodeId = opts.nodeId ?? randomUUID();
    this.pollMs = opts.pollMs ?? 1000;
  }

  private get key(): string {
    return `${this.prefix}:nodes:${this.region}`;
  }

  /** Registers this node; resolves once it may serve (after peers had time to notice it). */
  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    this.timer.unref();
    if (!this.alone) await new Promise((r) => setTimeout(r, 2 * this.pollMs));
  }

  /** Whether this node is, as of at most two polls ago, the only node of its region. */
  get alone(): boolean {
    return this.lastCount === 1 && Date.now() - this.lastOkAt <= 2 * this.pollMs;
  }

  /** Live nodes of the region, as last counted (0 when unknown). */
  get count(): number {
    return Date.now() - this.lastOkAt <= 2 * this.pollMs ? this.lastCount : 0;
  }

  private poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const now = Date.now();
    try {
      // Bounded: a client that queues commands while Redis is down must not stall the node.
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        this.redis
          .multi()
          .zadd(this.key, now + 3 * this.pollMs, this.nodeId)
          .zremrangebyscore(this.key, '-inf', now)
          .zcard(this.key)
          .pexpire(this.key, 10 * this.pollMs)
          .exec(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('Redis did not answer')), this.pollMs);
        }),
      ]).finally(() => clearTimeout(timer));
      const card = r?.[2]?.[1];
      if (typeof card !== 'number') throw new Error('no answer');
      this.lastCount = card;
      this.lastOkAt = now;
    } catch {
      this.lastCount = 0;
    }
    regionNodesGauge.set({ region: this.region }, this.count);
    this.notify();
  }

  private notify(): void {
    const alone = this.alone;
    if (alone !== this.wasAlone) {
      this.wasAlone = alone;
      this.opts.onChange?.(alone);
    }
  }

  /** Stops the heartbeat and leaves the region at once (peers may cache again). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.polling;
    // Leaving is a courtesy (the entry expires anyway): never wait on an unreachable Redis.
    await Promise.race([
      this.redis.zrem(this.key, this.nodeId).catch(() => {}),
      new Promise((r) => setTimeout(r, this.pollMs).unref()),
    ]);
  }
}
