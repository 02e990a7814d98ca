import type { Redis } from 'ioredis';

/** A child process `meridian dev` saw die and started again (ADR 0023). */
export interface ProcessRestart {
  /** What the terminal calls it: `region eastus`, `region westeurope node 2`, `worker`, … */
  process: string;
  kind: 'node' | 'worker' | 'gateway' | 'redis';
  /** A node's region. */
  region?: string;
  /** The pid that died. */
  pid: number;
  /** When it died (ISO 8601). */
  exitedAt: string;
  /** `exited with code 1`, `was killed by SIGKILL`. */
  reason: string;
  /** When it was started again, and as which pid. */
  restartedAt: string;
  newPid?: number;
}

/** Restarts kept (the newest). */
const KEEP = 100;

const key = (prefix: string) => `${prefix}:dev:restarts`;

/**
 * The restarts of a dev cluster's children, in the cluster's Redis (a capped list, newest
 * first): `meridian dev` writes them, the regions API returns them so the dashboard shows them.
 * Outside `meridian dev` nothing writes it and the list is empty.
 */
export class ProcessRestarts {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async record(r: ProcessRestart): Promise<void> {
    await this.redis
      .multi()
      .lpush(key(this.prefix), JSON.stringify(r))
      .ltrim(key(this.prefix), 0, KEEP - 1)
      .exec();
  }

  /** Newest first. */
  async list(limit = 50): Promise<ProcessRestart[]> {
    const raw = await this.redis.lrange(key(this.prefix), 0, Math.max(0, limit - 1));
    return raw.flatMap((x) => {
      try {
        return [JSON.parse(x) as ProcessRestart];
      } catch {
        return [];
      }
    });
  }

  /** Forgets every recorded restart (a new dev run starts with none). */
  async clear(): Promise<void> {
    await this.redis.del(key(this.prefix));
  }
}
