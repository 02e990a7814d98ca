import type { Redis } from 'ioredis';
import { bullmq } from '@meridian/redis';
import type { GarbageCollector, GcReport } from './collector';
import { recordFailure, recordRun } from './metrics';
import { gcQueueName, runGc, type GcJobData } from './schedule';

/** A request the admin API or the CLI cannot run as asked (maps to HTTP 400). */
export class GcRequestError extends Error {}

export interface GcServiceOptions {
  /** The region this node serves. */
  region: string;
  /** Every region of the cluster. */
  regions: string[];
  /** This node's collector, when it collects its own region (a primary node). */
  collector?: GarbageCollector;
  /** With Redis, runs go through the regions' GC queues (whoever collects each region). */
  redis?: Redis;
  bullPrefix: string;
  graceMs: number;
  minGraceMs: number;
}

export interface GcRequest {
  region?: string;
  /** Default `full`. */
  mode?: 'full' | 'incremental';
  dryRun?: boolean;
  graceSeconds?: number;
}

export interface GcHistoryEntry {
  region: string;
  id: string;
  reason: string;
  mode: string;
  dryRun: boolean;
  startedAt?: number;
  finishedAt?: number;
  failedReason?: string;
  report?: GcReport;
  /** How far an active run is: `{phase, done, total}`. */
  progress?: unknown;
}

/** A region's GC at a glance (the dashboard's region table). */
export interface GcRegionSummary {
  region: string;
  lastSuccessAt?: number;
  lastRun?: { mode: string; blobsDeleted: number; bytesFreed: number; durationMs: number };
  /** A failure after the last success. */
  lastFailure?: { at?: number; reason?: string };
}

/** What `POST /meridian/v1/admin/gc` and `meridian gc` drive. */
export class GcService {
  constructor(private readonly opts: GcServiceOptions) {}

  /** Runs GC of one region (this node's by default) now and returns its report. */
  async run(req: GcRequest): Promise<GcReport> {
    const region = req.region ?? this.opts.region;
    if (!this.opts.regions.includes(region))
      throw new GcRequestError(`unknown region: ${region.slice(0, 64)}`);
    const graceMs = req.graceSeconds === undefined ? this.opts.graceMs : req.graceSeconds * 1000;
    if (graceMs < this.opts.minGraceMs)
      throw new GcRequestError(
        `grace ${Math.round(graceMs / 1000)} s is below gc.minGraceSeconds (${this.opts.minGraceMs / 1000} s)`,
      );
    const dryRun = req.dryRun ?? false;
    const mode = req.mode ?? 'full';
    if (this.opts.redis)
      return runGc(this.opts.redis, this.opts.bullPrefix, { region, mode, dryRun, graceMs });
    if (region !== this.opts.region || !this.opts.collector)
      throw new GcRequestError(`region ${region} is collected by its workers, which need Redis`);
    try {
      const report = await this.opts.collector.run({ mode, dryRun, graceMs });
      recordRun(report);
      return report;
    } catch (err) {
      recordFailure(region, dryRun);
      throw err;
    }
  }

  /** Per region: the last successful run (not a dry run) and the last failure, if later. */
  async regions(): Promise<GcRegionSummary[]> {
    const out: GcRegionSummary[] = [];
    const runs = await this.history(50);
    for (const region of this.opts.regions) {
      const mine = runs.filter((r) => r.region === region && r.finishedAt && !r.dryRun);
      const ok = mine.find((r) => !r.failedReason && r.report);
      const failed = mine.find((r) => r.failedReason);
      out.push({
        region,
        lastSuccessAt: ok?.finishedAt,
        ...(ok?.report
          ? {
              lastRun: {
                mode: ok.report.mode,
                blobsDeleted: ok.report.blobsDeleted,
                bytesFreed: ok.report.bytesFreed,
                durationMs: ok.report.durationMs,
              },
            }
          : {}),
        ...(failed && (failed.finishedAt ?? 0) > (ok?.finishedAt ?? 0)
          ? { lastFailure: { at: failed.finishedAt, reason: failed.failedReason } }
          : {}),
      });
    }
    return out;
  }

  /** The last runs of every region (newest first), from the GC queues. */
  async history(limit = 20): Promise<GcHistoryEntry[]> {
    if (!this.opts.redis) return [];
    const { Queue } = bullmq();
    const out: GcHistoryEntry[] = [];
    for (const region of this.opts.regions) {
      const q = new Queue<GcJobData, GcReport>(gcQueueName(region), {
        connection: this.opts.redis,
        prefix: this.opts.bullPrefix,
      });
      try {
        for (const j of await q.getJobs(['completed', 'failed', 'active'], 0, limit - 1))
          out.push({
            region,
            id: String(j.id),
            reason: j.data.reason,
            mode: j.data.mode,
            dryRun: j.data.dryRun,
            startedAt: j.processedOn,
            finishedAt: j.finishedOn,
            ...(j.failedReason ? { failedReason: j.failedReason } : {}),
            ...(j.returnvalue ? { report: j.returnvalue } : {}),
            ...(j.progress && typeof j.progress === 'object' ? { progress: j.progress } : {}),
          });
      } finally {
        await q.close();
      }
    }
    return out.sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0));
  }
}
