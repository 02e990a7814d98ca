import { Counter, Gauge, Histogram, register } from 'prom-client';
import { ACTIVITY_LAG_BOUNDS } from './activity';

/** Replication metrics (workers and nodes). Labels: region, kind, result — all bounded. */
export const lagSeconds = new Histogram({
  name: 'meridian_replication_lag_seconds',
  help: 'Time from commit on the primary to visibility in the region, per applied change',
  labelNames: ['region', 'kind'] as const,
  buckets: ACTIVITY_LAG_BOUNDS,
  registers: [register],
});

export const oldestPendingSeconds = new Gauge({
  name: 'meridian_replication_oldest_pending_seconds',
  help: 'Age of the oldest change not yet applied in the region (0 when caught up)',
  labelNames: ['region'] as const,
  registers: [register],
});

export const queueJobs = new Gauge({
  name: 'meridian_replication_queue_jobs',
  help: 'Sync jobs per region by state (waiting, active, delayed, failed)',
  labelNames: ['region', 'state'] as const,
  registers: [register],
});

export const bytesCopied = new Counter({
  name: 'meridian_replication_bytes_copied_total',
  help: 'Blob bytes copied into the region (server-side copies included)',
  labelNames: ['region', 'mode'] as const,
  registers: [register],
});

export const sourceRequests = new Counter({
  name: 'meridian_replication_source_requests_total',
  help: 'Requests sync jobs made to the primary region store (each one a WAN round trip), by region',
  labelNames: ['region'] as const,
  registers: [register],
});

export const objectsCopied = new Counter({
  name: 'meridian_replication_objects_copied_total',
  help: 'Objects written into the region by sync jobs, by kind',
  labelNames: ['region', 'kind'] as const,
  registers: [register],
});

export const copyDuration = new Histogram({
  name: 'meridian_replication_copy_duration_seconds',
  help: 'Time to copy one blob into the region (throughput = bytes_copied / this)',
  labelNames: ['region', 'mode'] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
  registers: [register],
});

export const jobsProcessed = new Counter({
  name: 'meridian_replication_jobs_total',
  help: 'Sync jobs finished, by region, kind and result (ok, retry, failed)',
  labelNames: ['region', 'kind', 'result'] as const,
  registers: [register],
});

export const driftFound = new Counter({
  name: 'meridian_replication_reconciler_drift_total',
  help: 'Differences the reconciler found between a region and the primary',
  labelNames: ['region', 'kind'] as const,
  registers: [register],
});

export const tagWatchUnsure = new Gauge({
  name: 'meridian_replica_tag_freshness_unknown',
  help: 'Replica: 1 while it cannot tell which tags are behind (Redis unreachable, or restarted or flushed and the region not yet reconciled) and resolves every tag at the primary',
  labelNames: ['region'] as const,
  registers: [register],
});

export const tagAnnouncementSeconds = new Histogram({
  name: 'meridian_replica_tag_announcement_seconds',
  help: 'Replica: time from a tag change committed on the primary to this node hearing of it (the read-your-writes window; clocks of both hosts)',
  labelNames: ['region'] as const,
  buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
  registers: [register],
});
