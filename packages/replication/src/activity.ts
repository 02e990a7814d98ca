import type { Redis } from 'ioredis';
import type { SyncKind } from './targets';

/** Width of one history bucket, seconds. */
export const ACTIVITY_BUCKET_SECONDS = 10;
/** Window over which each history point's lag quantiles are computed, seconds. */
export const ACTIVITY_QUANTILE_WINDOW_SECONDS = 60;
/** Upper bounds of the lag histogram kept per bucket (the same as `meridian_replication_lag_seconds`). */
export const ACTIVITY_LAG_BOUNDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600];
/** Recent events kept for the feed. */
const RECENT_KEEP = 200;
const HOUR_MS = 3_600_000;
const BUCKET_MS = ACTIVITY_BUCKET_SECONDS * 1000;

/** One finished sync job, as the dashboard's feed shows it. */
export interface ActivityEvent {
  region: string;
  kind: SyncKind;
  repository: string;
  /** Tag or digest. */
  reference: string;
  result: 'ok' | 'failed';
  /** Commit on the primary → visible in the region, when known. */
  lagSeconds: number | null;
  /** When the job finished (ISO 8601). */
  at: string;
  error?: string;
}

/** One history point: a bucket of `ACTIVITY_BUCKET_SECONDS` starting at `t`. */
export interface ActivityPoint {
  /** Bucket start, ms since the epoch. */
  t: number;
  /** Lag quantiles of changes applied in the trailing quantile window; null when none were. */
  p50: number | null;
  p99: number | null;
  /** Changes applied / failed permanently in this bucket. */
  applied: number;
  failed: number;
  /** Blob bytes copied into the region in this bucket. */
  bytes: number;
  /** Reads the region could not serve locally and sent to the primary, in this bucket. */
  fallbacks: number;
  /** Unapplied changes and the age of the oldest one, last sampled in this bucket. */
  backlog: number | null;
  oldestPendingSeconds: number | null;
}

export interface RegionActivity {
  region: string;
  points: ActivityPoint[];
}

/**
 * Replication activity over the last hour, shared by every node and worker through Redis (so
 * any node, or the gateway, shows the whole cluster): per region and per 10 s bucket a lag
 * histogram, counts of applied and failed changes, bytes copied, fallbacks and the sampled
 * backlog, plus a short list of recently finished jobs. One hash per region and hour
 * (`<prefix>:activity:<region>:<hour>`, expiring after two hours), so memory stays bounded
 * whatever the traffic. Best effort: recording never fails a job.
 */
export class ReplicationActivity {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private hourKey(region: string, t: number): string {
    return `${this.prefix}:activity:${region}:${Math.floor(t / HOUR_MS)}`;
  }

  private get recentKey(): string {
    return `${this.prefix}:activity:recent`;
  }

  private static field(t: number, name: string): string {
    return `${Math.floor((t % HOUR_MS) / BUCKET_MS)}:${name}`;
  }

  /** Workers: a job finished (applied, or failed for good), with the bytes it copied. */
  async recordJob(e: ActivityEvent, bytes = 0, now = Date.now()): Promise<void> {
    const key = this.hourKey(e.region, now);
    const f = (name: string) => ReplicationActivity.field(now, name);
    const m = this.redis.multi();
    if (e.result === 'ok') {
      m.hincrby(key, f('n'), 1);
      if (e.lagSeconds !== null) {
        const i = ACTIVITY_LAG_BOUNDS.findIndex((b) => e.lagSeconds! <= b);
        m.hincrby(key, f(`l${i < 0 ? ACTIVITY_LAG_BOUNDS.length : i}`), 1);
      }
    } else m.hincrby(key, f('failed'), 1);
    if (bytes > 0) m.hincrby(key, f('bytes'), Math.round(bytes));
    m.expire(key, 7200);
    m.lpush(this.recentKey, JSON.stringify(e));
    m.ltrim(this.recentKey, 0, RECENT_KEEP - 1);
    await m.exec();
  }

  /** Replica nodes: a read the region could not serve locally went to the primary. */
  async recordFallback(region: string, now = Date.now()): Promise<void> {
    const key = this.hourKey(region, now);
    await this.redis
      .multi()
      .hincrby(key, ReplicationActivity.field(now, 'fb'), 1)
      .expire(key, 7200)
      .exec();
  }

  /** Nodes (on their gauge timer): the region's backlog right now. */
  async recordBacklog(
    region: string,
    pending: number,
    oldestPendingSeconds: number,
    now = Date.now(),
  ): Promise<void> {
    const key = this.hourKey(region, now);
    await this.redis
      .multi()
      .hset(
        key,
        ReplicationActivity.field(now, 'backlog'),
        pending,
        ReplicationActivity.field(now, 'oldest'),
        oldestPendingSeconds.toFixed(3),
      )
      .expire(key, 7200)
      .exec();
  }

  /** The most recent finished jobs, newest first. */
  async recent(limit = 50): Promise<ActivityEvent[]> {
    const raw = await this.redis.lrange(this.recentKey, 0, Math.min(limit, RECENT_KEEP) - 1);
    return raw.map((s) => JSON.parse(s) as ActivityEvent);
  }

  /**
   * Points for each region from `since` (default: an hour ago) to now, oldest first. Each
   * point's p50/p99 cover the trailing minute, like `histogram_quantile(rate(...[1m]))`.
   */
  async history(regions: string[], since?: number, now = Date.now()): Promise<RegionActivity[]> {
    const end = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const first = Math.max(
      end - HOUR_MS + BUCKET_MS,
      Math.floor((since ?? 0) / BUCKET_MS) * BUCKET_MS,
    );
    const windowBuckets = ACTIVITY_QUANTILE_WINDOW_SECONDS / ACTIVITY_BUCKET_SECONDS;
    const from = first - (windowBuckets - 1) * BUCKET_MS;
    const hours: number[] = [];
    for (let h = Math.floor(from / HOUR_MS); h <= Math.floor(end / HOUR_MS); h++) hours.push(h);
    const p = this.redis.pipeline();
    for (const r of regions) for (const h of hours) p.hgetall(`${this.prefix}:activity:${r}:${h}`);
    const res = (await p.exec()) ?? [];
    return regions.map((region, ri) => {
      const fields = new Map<string, string>();
      for (const [hi, h] of hours.entries()) {
        const [err, obj] = res[ri * hours.length + hi] ?? [null, {}];
        if (err) continue;
        for (const [k, v] of Object.entries((obj ?? {}) as Record<string, string>))
          fields.set(`${h}/${k}`, v);
      }
      const get = (t: number, name: string): number | undefined => {
        const v = fields.get(
          `${Math.floor(t / HOUR_MS)}/${Math.floor((t % HOUR_MS) / BUCKET_MS)}:${name}`,
        );
        return v === undefined ? undefined : Number(v);
      };
      const points: ActivityPoint[] = [];
      for (let t = first; t <= end; t += BUCKET_MS) {
        const counts = ACTIVITY_LAG_BOUNDS.map(() => 0).concat(0);
        for (let w = t - (windowBuckets - 1) * BUCKET_MS; w <= t; w += BUCKET_MS)
          for (let i = 0; i < counts.length; i++) counts[i]! += get(w, `l${i}`) ?? 0;
        points.push({
          t,
          p50: quantile(0.5, counts),
          p99: quantile(0.99, counts),
          applied: get(t, 'n') ?? 0,
          failed: get(t, 'failed') ?? 0,
          bytes: get(t, 'bytes') ?? 0,
          fallbacks: get(t, 'fb') ?? 0,
          backlog: get(t, 'backlog') ?? null,
          oldestPendingSeconds: get(t, 'oldest') ?? null,
        });
      }
      return { region, points };
    });
  }
}

/**
 * The q-quantile of a histogram given as per-bucket counts over `ACTIVITY_LAG_BOUNDS` (+Inf
 * last), interpolated linearly inside the bucket as Prometheus's `histogram_quantile` does.
 */
export function quantile(q: number, counts: number[]): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let cum = 0;
  for (const [i, c] of counts.entries()) {
    if (cum + c >= rank && c > 0) {
      const upper = ACTIVITY_LAG_BOUNDS[i];
      const lower = i === 0 ? 0 : ACTIVITY_LAG_BOUNDS[i - 1]!;
      if (upper === undefined) return lower; // +Inf bucket: the highest finite bound
      return lower + (upper - lower) * ((rank - cum) / c);
    }
    cum += c;
  }
  return ACTIVITY_LAG_BOUNDS[ACTIVITY_LAG_BOUNDS.length - 1]!;
}
