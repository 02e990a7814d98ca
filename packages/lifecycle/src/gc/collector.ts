import { parseDigest, type Digest } from '@meridian/oci';
import { Layout, RepositoryLayout, listAllObjects } from '@meridian/storage';
import { markAll, type Mark, type RepositoryMark } from './mark';
import { Pacer } from './pacer';
import type { CollectorOptions, GcGuard, GcReport, GcRunOptions } from './types';

export * from './types';

const noGuard: GcGuard = { exclusive: (_key, fn) => fn() };

interface RunContext {
  pace: () => Promise<void>;
  cut: number;
  dryRun: boolean;
  report: GcReport;
  seen: ReadonlySet<string> | undefined;
  onProgress: GcRunOptions['onProgress'];
}

function tryDigest(s: string): Digest | undefined {
  try {
    return parseDigest(s);
  } catch {
    return undefined;
  }
}

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

  get role(): 'primary' | 'replica' {
    return this.opts.role;
  }

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
    const mode = run.mode ?? 'full';
    const cut = started - run.graceMs;
    const report: GcReport = {
      region: this.opts.region,
      role: this.opts.role,
      mode,
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
      tombstonesPurged: 0,
      deletedDigests: [],
      deferredDigests: [],
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
    };
    // Watch before listing: a link made after a repository was listed is still seen.
    const watch = this.guard.watch?.();
    const pacer = new Pacer(this.opts.duty ?? 0.5);
    const ctx: RunContext = {
      pace: () => pacer.pace(),
      cut,
      dryRun,
      report,
      seen: watch?.seen,
      onProgress: run.onProgress,
    };
    try {
      if (!dryRun && this.opts.purgeUploads) report.uploadsPurged = await this.opts.purgeUploads();
      if (!dryRun && this.opts.purgeTombstones)
        report.tombstonesPurged = await this.opts.purgeTombstones();
      if (mode === 'full') await this.full(ctx);
      else if (this.opts.role === 'primary') await this.incrementalPrimary(ctx, started);
      else await this.incrementalReplica(ctx, run.digests ?? []);
      if (mode === 'full') report.stagingRemoved = await this.sweepStaging(cut, dryRun);
    } finally {
      watch?.stop();
    }
    report.durationMs = this.now() - started;
    return report;
  }

  /** Mark every repository, unlink (primary), sweep every stored blob. */
  private async full(ctx: RunContext): Promise<void> {
    const { report } = ctx;
    const repos = await this.layout.listRepositories();
    let marked = 0;
    const mark = await markAll(
      this.layout,
      repos,
      4,
      () => ctx.onProgress?.('mark', ++marked, repos.length),
      ctx.pace,
    );
    this.noteMark(mark, report);
    const linked = new Set(mark.live);
    const keepDirty = new Set<string>();
    if (this.opts.role === 'primary') {
      let swept = 0;
      for (const m of mark.repositories) {
        const { waiting } = await this.sweepRepository(m, ctx, linked);
        if (waiting) keepDirty.add(m.repository);
        ctx.onProgress?.('unlink', ++swept, mark.repositories.length);
      }
    } else {
      for (const m of mark.repositories) for (const l of m.layers) linked.add(l.digest.value);
    }
    const blobs = await this.layout.listBlobs();
    report.blobsScanned = blobs.length;
    const primary = this.opts.primary ? new RepositoryLayout(this.opts.primary) : undefined;
    const inScope = primary && (await this.primaryInScope(primary, ctx));
    let done = 0;
    for (const b of blobs) {
      ctx.onProgress?.('sweep', ++done, blobs.length);
      await ctx.pace();
      if (linked.has(b.digest.value) || b.modified.getTime() >= ctx.cut) continue;
      if (primary && (await primary.hasBlob(b.digest))) {
        // Held by the primary: needed here unless only repositories outside the scope use it.
        if (!inScope || inScope.has(b.digest.value)) continue;
        await this.deleteBlob(b.digest, ctx, async () => false);
        continue;
      }
      await this.deleteBlob(b.digest, ctx, () => this.primaryHas(b.digest));
    }
    if (!ctx.dryRun && this.opts.role === 'primary') await this.clearMarkers(mark, ctx, keepDirty);
  }

  /**
   * Only what deletes left behind: the repositories the event subscriber marked dirty are
   * marked and swept; the blobs it named, and those this run unlinked, are deleted when no
   * repository links them. Markers are removed once handled (never those written during the
   * run); a repository stays dirty while its manifests reference what it does not link, or
   * while it has unreferenced links still inside the grace period.
   */
  private async incrementalPrimary(ctx: RunContext, started: number): Promise<void> {
    const { report } = ctx;
    const markers = await listAllObjects(this.opts.store, Layout.gcRoot);
    const old = markers.filter((m) => m.modified.getTime() < started);
    const dirty = old.flatMap((m) => {
      const k = /^_gc\/dirty\/(.+)\/_repo$/.exec(m.key);
      return k ? [k[1]!] : [];
    });
    const candidates = new Map<string, Digest>();
    for (const m of old) {
      const k = /^_gc\/blobs\/([a-z0-9]+)-([a-f0-9]+)$/.exec(m.key);
      if (k) {
        const d = tryDigest(`${k[1]}:${k[2]}`);
        if (d) candidates.set(d.value, d);
      }
    }
    const mark = await markAll(this.layout, dirty, 4, undefined, ctx.pace);
    this.noteMark(mark, report);
    const linked = new Set(mark.live);
    const keepDirty = new Set<string>();
    for (const m of mark.repositories) {
      const { unlinked, waiting } = await this.sweepRepository(m, ctx, linked);
      for (const d of unlinked) candidates.set(d.value, d);
      if (waiting || m.dangling.length > 0 || m.unreadable.length > 0) keepDirty.add(m.repository);
    }
    // Links anywhere, from listings (the guard's watch covers links made since the run began).
    const linkedAnywhere = candidates.size > 0 ? await this.linkedAnywhere() : new Set<string>();
    const keepCandidate = new Set<string>();
    let done = 0;
    for (const d of candidates.values()) {
      ctx.onProgress?.('sweep', ++done, candidates.size);
      await ctx.pace();
      report.blobsScanned++;
      if (linked.has(d.value)) continue;
      const info = await this.layout.blobInfo(d);
      if (!info) continue;
      if (info.modified.getTime() >= ctx.cut) {
        keepCandidate.add(d.value); // not yet past the grace: the next run looks again
        continue;
      }
      if (linkedAnywhere.has(d.value)) continue;
      await this.deleteBlob(d, ctx, async () => false);
    }
    if (ctx.dryRun) return;
    for (const m of old) {
      const k = /^_gc\/dirty\/(.+)\/_repo$/.exec(m.key);
      const b = /^_gc\/blobs\/([a-z0-9]+)-([a-f0-9]+)$/.exec(m.key);
      if (k && keepDirty.has(k[1]!)) continue;
      if (b && keepCandidate.has(`${b[1]}:${b[2]}`)) continue;
      await this.opts.store.delete(m.key);
    }
  }

  /**
   * A replica's share of what the primary freed: each blob the region still holds, no longer
   * links and the primary no longer has. Ones the region still links are reported as deferred
   * (their unlink is still on its way through replication).
   */
  private async incrementalReplica(ctx: RunContext, digests: string[]): Promise<void> {
    const primary = new RepositoryLayout(this.opts.primary!);
    const linked = await this.linkedAnywhere();
    for (const s of digests) {
      const d = tryDigest(s);
      if (!d) continue;
      ctx.report.blobsScanned++;
      if (await primary.hasBlob(d)) continue;
      if (linked.has(d.value)) {
        ctx.report.deferredDigests.push(d.value);
        continue;
      }
      await this.deleteBlob(d, ctx, () => this.primaryHas(d));
    }
  }

  /**
   * On a scoped replica region: every digest the primary's in-scope repositories use (ADR 0026).
   * A push racing this run may link a blob after it was read; a bytes-less link that leaves is
   * served by fallback and copied back in on its first pull.
   */
  private async primaryInScope(
    primary: RepositoryLayout,
    ctx: RunContext,
  ): Promise<Set<string> | undefined> {
    const scope = this.opts.scope;
    if (this.opts.role !== 'replica' || !scope) return undefined;
    const repos = (await primary.listRepositories()).filter((r) => scope.covers(r));
    return (await markAll(primary, repos, 4, undefined, ctx.pace)).live;
  }

  private noteMark(mark: Mark, report: GcReport): void {
    report.repositories = mark.repositories.length;
    report.manifests = mark.manifests;
    report.unreadableRepositories = mark.repositories
      .filter((m) => m.unreadable.length > 0)
      .map((m) => m.repository);
  }

  /**
   * Deletes blob `d` under its lock if, re-checked now, it is still past the grace, not
   * referenced since the run started, and `needed` says no (a replica: the primary has it).
   */
  private async deleteBlob(
    d: Digest,
    ctx: RunContext,
    needed: () => Promise<boolean>,
  ): Promise<void> {
    const { report } = ctx;
    await this.guard.exclusive(`blob:${d.value}`, async () => {
      const info = await this.layout.blobInfo(d);
      if (!info) return;
      if (ctx.seen?.has(d.value) || info.modified.getTime() >= ctx.cut || (await needed())) {
        report.conflicts++;
        return;
      }
      if (ctx.dryRun) {
        report.blobsDeleted++;
        report.bytesFreed += info.size;
        report.deletedDigests.push(d.value);
        return;
      }
      await this.fenced(d, ctx, async () => {
        report.blobsDeleted++;
        report.bytesFreed += info.size;
        report.deletedDigests.push(d.value);
        await this.opts.hooks?.beforeDelete?.(d.value);
        await this.layout.deleteBlob(d);
        await this.guard.forget?.(d);
      });
    });
  }

  /**
   * Runs a destructive step on `d` under the guard's cross-node claim (ADR 0024). A contested
   * claim — another node's writer referenced `d` lately — or one held past its budget skips the
   * step (a conflict). Returns what `step` returned, or false when skipped.
   */
  private async fenced(
    d: Digest,
    ctx: RunContext,
    step: () => Promise<boolean | void>,
  ): Promise<boolean> {
    if (!this.guard.claim) return (await step()) !== false;
    const claim = await this.guard.claim(d);
    try {
      if (claim.contested || !claim.valid()) {
        ctx.report.conflicts++;
        return false;
      }
      return (await step()) !== false;
    } finally {
      await claim.release();
    }
  }

  /** After a full run: every marker written before it is handled (except still-dirty repos). */
  private async clearMarkers(mark: Mark, ctx: RunContext, keep: Set<string>): Promise<void> {
    const started = Date.parse(ctx.report.startedAt);
    for (const m of mark.repositories)
      if (m.dangling.length > 0 || m.unreadable.length > 0) keep.add(m.repository);
    for (const o of await listAllObjects(this.opts.store, Layout.gcRoot)) {
      if (o.modified.getTime() >= started) continue;
      const k = /^_gc\/dirty\/(.+)\/_repo$/.exec(o.key);
      if (k && keep.has(k[1]!)) continue;
      const b = /^_gc\/blobs\/([a-z0-9]+)-([a-f0-9]+)$/.exec(o.key);
      const d = b ? tryDigest(`${b[1]}:${b[2]}`) : undefined;
      const info = d ? await this.layout.blobInfo(d) : undefined;
      if (info && info.modified.getTime() >= ctx.cut) continue; // judged by a later run
      await this.opts.store.delete(o.key);
    }
  }

  /**
   * Unlinks the repository's layer links no manifest of it references, older than the grace;
   * `waiting` when unreferenced links remain that are still inside it.
   */
  private async sweepRepository(
    m: RepositoryMark,
    ctx: RunContext,
    linked: Set<string>,
  ): Promise<{ unlinked: Digest[]; waiting: boolean }> {
    const { cut, dryRun, report } = ctx;
    const keep = m.unreadable.length > 0;
    const candidates: Digest[] = [];
    let waiting = false;
    for (const l of m.layers) {
      const d = l.digest.value;
      const used = keep || m.referenced.has(d) || m.revisions.has(d);
      if (!used && l.modified.getTime() >= cut) waiting = true;
      if (used || l.modified.getTime() >= cut) linked.add(d);
      else candidates.push(l.digest);
    }
    const strayReferrers = m.referrers.filter(
      (r) => !m.revisions.has(r.digest.value) && r.modified.getTime() < cut,
    );
    const unlinked: Digest[] = [];
    if (candidates.length === 0 && strayReferrers.length === 0) return { unlinked, waiting };
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
        if (dryRun) {
          report.linksRemoved++;
          unlinked.push(d);
          continue;
        }
        const done = await this.fenced(d, ctx, async () => {
          // Re-read under the claim: a writer on another node may have renewed it meanwhile.
          const again = await this.layout.layerInfo(m.repository, d);
          if (!again || again.modified.getTime() >= cut) return false;
          report.linksRemoved++;
          unlinked.push(d);
          // Noted first: if the run dies after the unlink, the next incremental run has the blob.
          await this.opts.store.put(Layout.gcCandidate(d), Buffer.alloc(0));
          await this.opts.hooks?.beforeUnlink?.(m.repository, d.value);
          await this.layout.unlinkLayer(m.repository, d);
          await this.opts.onUnlinked?.(m.repository, d.value);
          return true;
        });
        if (!done) linked.add(d.value);
      }
      for (const r of strayReferrers) {
        // A referrer entry whose manifest is gone (a delete that crashed half-way).
        if (await this.layout.hasRevision(m.repository, r.digest)) continue;
        report.referrerEntriesRemoved++;
        if (!dryRun)
          await this.opts.store.delete(Layout.referrer(m.repository, r.subject, r.digest));
      }
    });
    return { unlinked, waiting };
  }

  /**
   * On a replica, whether the primary holds `d` (re-checked under the lock: a replica deletes
   * only what the primary no longer has, so no copy still on its way can need it).
   */
  private async primaryHas(d: Digest): Promise<boolean> {
    return this.opts.primary ? new RepositoryLayout(this.opts.primary).hasBlob(d) : false;
  }

  /** Every digest some repository links now, from listings (a few calls per repository). */
  private async linkedAnywhere(): Promise<Set<string>> {
    const out = new Set<string>();
    const repos = await this.layout.listRepositories();
    const queue = [...repos];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let r = queue.shift(); r !== undefined; r = queue.shift())
          for (const d of await this.layout.listLinkedDigests(r)) out.add(d);
      }),
    );
    return out;
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
