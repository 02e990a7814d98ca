import type { Digest } from '@meridian/oci';
import { Layout, RepositoryLayout, listAllObjects, type ObjectStore } from '@meridian/storage';
import { markAll, type Mark, type RepositoryMark } from './mark';

/**
 * What keeps the collector and reference-creating writers apart (the registry's `ContentGuard`
 * on a primary; a cluster-wide mutex on a replica). Keys are `repo:<name>` and `blob:<digest>`.
 */
export interface GcGuard {
  exclusive<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** Digests referenced from now until `stop`: live for the run, whatever the listing saw. */
  watch?(): { seen: ReadonlySet<string>; stop: () => void };
}

/** Points where tests widen the race windows. Each runs holding the lock of the step. */
export interface GcHooks {
  beforeUnlink?(repository: string, digest: string): Promise<void>;
  beforeDelete?(digest: string): Promise<void>;
}

export interface CollectorOptions {
  region: string;
  store: ObjectStore;
  /**
   * `primary`: decides from its own state, unlinks unreferenced links and deletes unlinked
   * bytes. `replica`: deletes only bytes its region no longer links and the primary no longer
   * holds (the primary decided); its links follow the primary's through replication.
   */
  role: 'primary' | 'replica';
  /** The primary's store; required for a replica. */
  primary?: ObjectStore;
  guard?: GcGuard;
  /** Purges upload sessions idle past their timeout (primary); returns how many. */
  purgeUploads?: () => Promise<number>;
  /** Called after each link the collector removed (the primary emits `blobDeleted`). */
  onUnlinked?: (repository: string, digest: string) => Promise<void>;
  hooks?: GcHooks;
  now?: () => number;
}

export interface GcRunOptions {
  dryRun?: boolean;
  graceMs: number;
  /** Progress: phase name and how far it is (`done` of `total`). */
  onProgress?: (phase: string, done: number, total: number) => void;
}

export interface GcReport {
  region: string;
  role: 'primary' | 'replica';
  dryRun: boolean;
  graceSeconds: number;
  repositories: number;
  manifests: number;
  blobsScanned: number;
  /** Links removed (or that would be, in a dry run). */
  linksRemoved: number;
  referrerEntriesRemoved: number;
  /** Blobs deleted (or that would be) and their bytes. */
  blobsDeleted: number;
  bytesFreed: number;
  /** Candidates a concurrent reference rescued at the moment of deletion. */
  conflicts: number;
  /** Repositories whose links were all kept because a manifest could not be read. */
  unreadableRepositories: string[];
  uploadsPurged: number;
  stagingRemoved: number;
  startedAt: string;
  durationMs: number;
}

const noGuard: GcGuard = { exclusive: (_key, fn) => fn() };

/**
 * Online garbage collection of one region's storage (ADR 0012): mark what every repository
 * references, unlink what nothing references (after the grace period), delete bytes nothing
 * links — each candidate re-checked under its lock at the moment of deletion, metadata before
 * bytes, so a crash at any point leaks at most an object for the next run.
 */
export class GarbageCollector {
  private readonly layout: RepositoryLayout;
  private readonly guard: GcGuard;
  private readonly now: () => number;

  constructor(private readonly opts: CollectorOptions) {
    if (opts.role === 'replica' && !opts.primary)
      throw new Error('a replica collector needs the primary store');
    this.layout = new RepositoryLayout(opts.store);
    this.guard = opts.guard ?? noGuard;
    this.now = opts.now ?? Date.now;
  }

  async run(run: GcRunOptions): Promise<GcReport> {
    const started = this.now();
    const dryRun = run.dryRun ?? false;
    const cut = started - run.graceMs;
    const report: GcReport = {
      region: this.opts.region,
      role: this.opts.role,
      dryRun,
      graceSeconds: Math.round(run.graceMs / 1000),
      repositories: 0,
      manifests: 0,
      blobsScanned: 0,
      linksRemoved: 0,
      referrerEntriesRemoved: 0,
      blobsDeleted: 0,
      bytesFreed: 0,
      conflicts: 0,
      unreadableRepositories: [],
      uploadsPurged: 0,
      stagingRemoved: 0,
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
    };
    // Watch before listing: a link made after a repository was listed is still seen.
    const watch = this.guard.watch?.();
    try {
      if (!dryRun && this.opts.purgeUploads) report.uploadsPurged = await this.opts.purgeUploads();
      const repos = await this.layout.listRepositories();
      let marked = 0;
      const mark = await markAll(this.layout, repos, 8, () =>
        run.onProgress?.('mark', ++marked, repos.length),
      );
      report.repositories = repos.length;
      report.manifests = mark.manifests;
      report.unreadableRepositories = mark.repositories
        .filter((m) => m.unreadable.length > 0)
        .map((m) => m.repository);
      const linked = new Set(mark.live);
      if (this.opts.role === 'primary') {
        let swept = 0;
        for (const m of mark.repositories) {
          await this.sweepRepository(m, cut, dryRun, linked, report);
          run.onProgress?.('unlink', ++swept, mark.repositories.length);
        }
      } else {
        for (const m of mark.repositories) for (const l of m.layers) linked.add(l.digest.value);
      }
      await this.sweepBlobs(mark, linked, cut, dryRun, report, watch?.seen, run.onProgress);
      report.stagingRemoved = await this.sweepStaging(cut, dryRun);
    } finally {
      watch?.stop();
    }
    report.durationMs = this.now() - started;
    return report;
  }

  /** Unlinks the repository's layer links no manifest of it references, older than the grace. */
  private async sweepRepository(
    m: RepositoryMark,
    cut: number,
    dryRun: boolean,
    linked: Set<string>,
    report: GcReport,
  ): Promise<void> {
    const keep = m.unreadable.length > 0;
    const candidates: Digest[] = [];
    for (const l of m.layers) {
      const d = l.digest.value;
      if (keep || m.referenced.has(d) || m.revisions.has(d) || l.modified.getTime() >= cut)
        linked.add(d);
      else candidates.push(l.digest);
    }
    const strayReferrers = m.referrers.filter(
      (r) => !m.revisions.has(r.digest.value) && r.modified.getTime() < cut,
    );
    if (candidates.length === 0 && strayReferrers.length === 0) return;
    await this.guard.exclusive(`repo:${m.repository}`, async () => {
      for (const d of candidates) {
        // Re-checked now: a push that asked about the blob or referenced it rewrote the link.
        const link = await this.layout.layerInfo(m.repository, d);
        if (!link) continue;
        if (link.modified.getTime() >= cut) {
          report.conflicts++;
          linked.add(d.value);
          continue;
        }
        report.linksRemoved++;
        if (dryRun) continue;
        await this.opts.hooks?.beforeUnlink?.(m.repository, d.value);
        await this.layout.unlinkLayer(m.repository, d);
        await this.opts.onUnlinked?.(m.repository, d.value);
      }
      for (const r of strayReferrers) {
        // A referrer entry whose manifest is gone (a delete that crashed half-way).
        if (await this.layout.hasRevision(m.repository, r.digest)) continue;
        report.referrerEntriesRemoved++;
        if (!dryRun)
          await this.opts.store.delete(Layout.referrer(m.repository, r.subject, r.digest));
      }
    });
  }

  /** Deletes stored bytes no repository links (and, on a replica, the primary no longer has). */
  private async sweepBlobs(
    mark: Mark,
    linked: Set<string>,
    cut: number,
    dryRun: boolean,
    report: GcReport,
    seen: ReadonlySet<string> | undefined,
    onProgress: GcRunOptions['onProgress'],
  ): Promise<void> {
    const blobs = await this.layout.listBlobs();
    report.blobsScanned = blobs.length;
    const primary = this.opts.primary ? new RepositoryLayout(this.opts.primary) : undefined;
    let done = 0;
    for (const b of blobs) {
      onProgress?.('sweep', ++done, blobs.length);
      const d = b.digest.value;
      if (linked.has(d) || b.modified.getTime() >= cut) continue;
      if (primary && (await primary.hasBlob(b.digest))) continue;
      await this.guard.exclusive(`blob:${d}`, async () => {
        const info = await this.layout.blobInfo(b.digest);
        if (!info) return;
        if (
          seen?.has(d) ||
          info.modified.getTime() >= cut ||
          (await this.linkedNow(mark, b.digest))
        ) {
          report.conflicts++;
          return;
        }
        report.blobsDeleted++;
        report.bytesFreed += info.size;
        if (dryRun) return;
        await this.opts.hooks?.beforeDelete?.(d);
        await this.layout.deleteBlob(b.digest);
      });
    }
  }

  /**
   * On a replica, whether a repository links `d` now (replication may have linked it since the
   * mark; the primary's own writers are covered by the guard's watch instead).
   */
  private async linkedNow(mark: Mark, d: Digest): Promise<boolean> {
    if (this.opts.role === 'primary') return false;
    for (const m of mark.repositories) if (await this.layout.isLinked(m.repository, d)) return true;
    return false;
  }

  /** Staged copies older than the grace period: left by a copier that crashed. */
  private async sweepStaging(cut: number, dryRun: boolean): Promise<number> {
    let removed = 0;
    for (const o of await listAllObjects(this.opts.store, Layout.stagingRoot)) {
      if (o.modified.getTime() >= cut) continue;
      removed++;
      if (!dryRun) await this.opts.store.delete(o.key);
    }
    return removed;
  }
}
