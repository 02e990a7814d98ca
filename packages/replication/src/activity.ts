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
/**
 * Lags kept verbatim per region and bucket, so quantiles are exact (the recorded values, not
 * an interpolation inside a histogram bucket). Beyond this many changes in one 10 s bucket a
 * window's quantiles fall back to the histogram's bucket bounds, labelled as such.
 */
export const ACTIVITY_LAG_SAMPLES = 1000;
/** Blob copies kept per region for the copy rate of the last copies. */
export const ACTIVITY_COPIES_KEPT = 20;
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
  /** The slowest lag in the window (exact quantiles only; null otherwise). */
  lagMax: number | null;
  /**
   * How p50/p99 were obtained: `exact` — nearest-rank quantiles of the recorded lags (always a
   * lag that was observed); `bound` — too many changes to keep each lag (or recorded before
   * lags were kept): the upper bound of the histogram bucket that holds the quantile, an upper
   * limit rather than a measurement; null when nothing was applied.
   */
  quantiles: 'exact' | 'bound' | null;
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

/** One blob copied into a region: its size and how long the copy took. */
export interface CopyRecord {
  /** When the copy finished, ms since the epoch. */
  at: number;
  bytes: number;
  seconds: number;
}

export interface RegionActivity {
  region: string;
  points: ActivityPoint[];
  /** The region's last blob copies (at most `ACTIVITY_COPIES_KEPT`), newest first. */
  copies: CopyRecord[];
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

  private lagsKey(region: string, t: number): string {
    return `${this.prefix}:activity:lags:${region}:${Math.floor(t / BUCKET_MS)}`;
  }

  private copiesKey(region: string): string {
    return `${this.prefix}:activity:copies:${region}`;
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
        const lags = this.lagsKey(e.region, now);
        m.rpush(lags, e.lagSeconds.toFixed(3));
        m.ltrim(lags, 0, ACTIVITY_LAG_SAMPLES - 1);
        m.expire(lags, 7200);
      }
    } else m.hincrby(key, f('failed'), 1);
    if (bytes > 0) m.hincrby(key, f('bytes'), Math.round(bytes));
    m.expire(key, 7200);
    m.lpush(this.recentKey, JSON.stringify(e));
    m.ltrim(this.recentKey, 0, RECENT_KEEP - 1);
    await m.exec();
  }

  /** Workers: a blob was copied into the region (not counted when it was already there). */
  async recordCopy(
    region: string,
    bytes: number,
    seconds: number,
    now = Date.now(),
  ): Promise<void> {
    const key = this.copiesKey(region);
    const record: CopyRecord = { at: now, bytes, seconds: Math.round(seconds * 1e6) / 1e6 };
    await this.redis
      .multi()
      .lpush(key, JSON.stringify(record))
      .ltrim(key, 0, ACTIVITY_COPIES_KEPT - 1)
      .expire(key, 7200)
      .exec();
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
   * Points for each region from `since` (default: an hour ago) to now, oldest first, and each
   * region's last blob copies. Each point's p50/p99 cover the trailing minute: exact
   * (nearest-rank over the recorded lags) when every lag of that minute was kept, otherwise
   * the histogram bucket's upper bound (see `ActivityPoint.quantiles`).
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
    const buckets: number[] = [];
    for (let t = from; t <= end; t += BUCKET_MS) buckets.push(t);
    const p = this.redis.pipeline();
    for (const r of regions) for (const h of hours) p.hgetall(`${this.prefix}:activity:${r}:${h}`);
    for (const r of regions) {
      for (const t of buckets) p.lrange(this.lagsKey(r, t), 0, -1);
      p.lrange(this.copiesKey(r), 0, -1);
    }
    const res = (await p.exec()) ?? [];
    const lagBase = regions.length * hours.length;
    const perRegion = buckets.length + 1;
    return regions.map((region, ri) => {
      const lagsAt = new Map<number, number[]>();
      for (const [bi, t] of buckets.entries()) {
        const [err, list] = res[lagBase + ri * perRegion + bi] ?? [null, []];
        // Sorted once per bucket: a window's six sorted runs then sort in near-linear time.
        if (!err)
          lagsAt.set(
            t,
            ((list ?? []) as string[]).map(Number).sort((x, y) => x - y),
          );
      }
      const [copiesErr, copiesRaw] = res[lagBase + ri * perRegion + buckets.length] ?? [null, []];
      const copies = copiesErr ? [] : parseCopies(copiesRaw as string[]);
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
        const lags: number[] = [];
        for (let w = t - (windowBuckets - 1) * BUCKET_MS; w <= t; w += BUCKET_MS) {
          for (let i = 0; i < counts.length; i++) counts[i]! += get(w, `l${i}`) ?? 0;
          for (const l of lagsAt.get(w) ?? []) lags.push(l);
        }
        const total = counts.reduce((a, b) => a + b, 0);
        // Every lag of the window kept: the quantiles are measured values.
        const exact = total > 0 && lags.length === total;
        if (exact) lags.sort((a, b) => a - b);
        points.push({
          t,
          p50: exact ? nearestRank(0.5, lags) : bucketBound(0.5, counts),
          p99: exact ? nearestRank(0.99, lags) : bucketBound(0.99, counts),
          lagMax: exact ? lags[lags.length - 1]! : null,
          quantiles: total === 0 ? null : exact ? 'exact' : 'bound',
          applied: get(t, 'n') ?? 0,
          failed: get(t, 'failed') ?? 0,
          bytes: get(t, 'bytes') ?? 0,
          fallbacks: get(t, 'fb') ?? 0,
          backlog: get(t, 'backlog') ?? null,
          oldestPendingSeconds: get(t, 'oldest') ?? null,
        });
      }
      return { region, points, copies };
    });
  }
}

function parseCopies(raw: string[] | null | undefined): CopyRecord[] {
  const out: CopyRecord[] = [];
  for (const s of raw ?? []) {
    try {
      const c = JSON.parse(s) as CopyRecord;
      if (Number.isFinite(c.at) && Number.isFinite(c.bytes) && Number.isFinite(c.seconds))
        out.push({ at: c.at, bytes: c.bytes, seconds: c.seconds });
    } catch {
      // a malformed entry is skipped
    }
  }
  return out;
}

/**
 * The q-quantile of sorted values by the nearest-rank method: the smallest value with at least
 * q of the values at or below it — always one of the values, never more than the largest.
 */
export function nearestRank(q: number, sorted: number[]): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/**
 * The upper bound of the histogram bucket (over `ACTIVITY_LAG_BOUNDS`, +Inf last) that holds
 * the q-quantile: what can honestly be said without the values — "at most this". The +Inf
 * bucket answers the highest finite bound.
 */
export function bucketBound(q: number, counts: number[]): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let cum = 0;
  for (const [i, c] of counts.entries()) {
    cum += c;
    if (cum >= rank && c > 0)
      return ACTIVITY_LAG_BOUNDS[i] ?? ACTIVITY_LAG_BOUNDS[ACTIVITY_LAG_BOUNDS.length - 1]!;
  }
  return ACTIVITY_LAG_BOUNDS[ACTIVITY_LAG_BOUNDS.length - 1]!;
}
