import { Counter, Gauge, Histogram, register } from 'prom-client';
import type { GcReport } from './collector';

/** Garbage-collection metrics. Labels: region, kind, result — all bounded. */
export const gcRuns = new Counter({
  name: 'meridian_gc_runs_total',
  help: 'Garbage-collection runs by result (ok, failed) and mode (run, dry_run)',
  labelNames: ['region', 'result', 'mode'] as const,
  registers: [register],
});

export const gcDeletedObjects = new Counter({
  name: 'meridian_gc_deleted_objects_total',
  help: 'Objects garbage collection removed (link, blob, referrer, upload, staging)',
  labelNames: ['region', 'kind'] as const,
  registers: [register],
});

export const gcDeletedBytes = new Counter({
  name: 'meridian_gc_deleted_bytes_total',
  help: 'Blob bytes garbage collection freed',
  labelNames: ['region'] as const,
  registers: [register],
});

export const gcConflicts = new Counter({
  name: 'meridian_gc_conflicts_total',
  help: 'Candidates a concurrent reference rescued at the moment of deletion',
  labelNames: ['region'] as const,
  registers: [register],
});

export const gcReclaimableBytes = new Gauge({
  name: 'meridian_gc_reclaimable_bytes',
  help: 'Bytes the last dry run found it could free (0 after a run that freed them)',
  labelNames: ['region'] as const,
  registers: [register],
});

export const gcDuration = new Histogram({
  name: 'meridian_gc_run_duration_seconds',
  help: 'Duration of garbage-collection runs',
  labelNames: ['region'] as const,
  buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
  registers: [register],
});

export const gcLastSuccess = new Gauge({
  name: 'meridian_gc_last_success_timestamp_seconds',
  help: 'When the last garbage-collection run (not a dry run) of the region succeeded',
  labelNames: ['region'] as const,
  registers: [register],
});

/** Records a finished run. */
export function recordRun(r: GcReport): void {
  const region = r.region;
  gcRuns.inc({ region, result: 'ok', mode: r.dryRun ? 'dry_run' : 'run' });
  gcDuration.observe({ region }, r.durationMs / 1000);
  gcConflicts.inc({ region }, r.conflicts);
  if (r.dryRun) {
    gcReclaimableBytes.set({ region }, r.bytesFreed);
    return;
  }
  gcReclaimableBytes.set({ region }, 0);
  gcLastSuccess.set({ region }, Date.now() / 1000);
  gcDeletedBytes.inc({ region }, r.bytesFreed);
  const kinds: [string, number][] = [
    ['link', r.linksRemoved],
    ['blob', r.blobsDeleted],
    ['referrer', r.referrerEntriesRemoved],
    ['upload', r.uploadsPurged],
    ['staging', r.stagingRemoved],
  ];
  for (const [kind, n] of kinds) if (n > 0) gcDeletedObjects.inc({ region, kind }, n);
}

export function recordFailure(region: string, dryRun: boolean): void {
  gcRuns.inc({ region, result: 'failed', mode: dryRun ? 'dry_run' : 'run' });
}
