import { randomUUID } from 'node:crypto';
import { OciError } from '@meridian/oci';
import { Layout, listAllObjects, type ObjectStore } from '@meridian/storage';

export interface RepositoryFenceOptions {
  /** Whether the fence is needed: the region has (or may have) other nodes. */
  active: () => boolean;
  /** How long a writer waits for a remover's claim to go. Default 60 000 ms. */
  waitMs?: number;
  /** A claim older than this (by this node's clock against the store's) is a dead remover's. Default 120 000 ms. */
  staleClaimMs?: number;
  /** A writer's key older than this is a dead writer's: ignored (and removed). Default 600 000 ms. */
  staleWriterMs?: number;
  /** How long a remover tries to find the repository without writers in flight. Default 10 000 ms. */
  contestBudgetMs?: number;
  /** How long after claiming a remover may still remove. Default 30 000 ms. */
  claimBudgetMs?: number;
  pollMs?: number;
}

// The keys are written without fsync: the protocol needs them visible to the other nodes, not
// kept across a crash (a crashed writer or remover is gone, and its key would only hold others).

/** A remover's hold on a repository: nothing writes a manifest or tag into it meanwhile. */
export interface RepositoryClaim {
  /** False once the claim is too old to act on (writers may have stopped waiting for it). */
  valid(): boolean;
  release(): Promise<void>;
}

const FREE: RepositoryClaim = { valid: () => true, release: async () => {} };

/**
 * Keeps a purge or retention run on one node and the manifest pushes on another apart (ADR
 * 0021's addendum), through the region's own store — as `StoreFence` does for garbage
 * collection and blobs, where the in-process `ContentGuard` cannot reach:
 *
 * - a writer, before it writes a manifest or tag into repository R, puts a key of its own
 *   under R's `_writers/`, then lists R's `_claims/`; while a live claim is there it waits (its
 *   key stays, so a remover, when it looks, backs off). It deletes its key once it has written;
 * - a remover, before it re-checks and deletes a tag or manifest of R, puts a claim of its own
 *   under R's `_claims/`, then lists R's writers; if one is in flight it takes its claim back and
 *   tries again shortly (within `contestBudgetMs`, then gives up: the tag or manifest is kept
 *   this run). Removers do not exclude each other (their deletes re-check what they delete).
 *
 * Each side writes before it reads, so for any interleaving at least one sees the other: a
 * remover never deletes blind while a push lands, and a push never lands while a remover holds
 * the repository. Unlike the blob fence, a writer is contested only while it is in flight (not
 * for minutes after), so a repository pushed to every few seconds is still purged between its
 * pushes. Inactive while the node is alone: the `ContentGuard` suffices then.
 */
export class RepositoryFence {
  private readonly waitMs: number;
  private readonly staleClaimMs: number;
  private readonly staleWriterMs: number;
  private readonly contestBudgetMs: number;
  private readonly claimBudgetMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: RepositoryFenceOptions,
  ) {
    this.waitMs = opts.waitMs ?? 60_000;
    this.staleClaimMs = opts.staleClaimMs ?? 120_000;
    this.staleWriterMs = opts.staleWriterMs ?? 600_000;
    this.contestBudgetMs = opts.contestBudgetMs ?? 10_000;
    this.claimBudgetMs = opts.claimBudgetMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 50;
  }

  get active(): boolean {
    return this.opts.active();
  }

  /**
   * A writer's side, before it writes a manifest or tag into `repository`. Resolves to the
   * function that ends it (call it once the write is done or failed); rejects with a 503 after
   * waiting `waitMs` for a remover's claim to go.
   */
  async enter(repository: string): Promise<() => Promise<void>> {
    if (!this.active) return async () => {};
    const key = Layout.fenceRepoWriter(repository, randomUUID());
    await this.store.put(key, Buffer.alloc(0), { durable: false });
    const leave = () => this.store.delete(key).catch(() => {});
    try {
      const started = Date.now();
      while (await this.claimed(repository)) {
        if (Date.now() - started > this.waitMs)
          throw new OciError(
            'UNAVAILABLE',
            'a purge or retention run is removing content from this repository; retry',
            undefined,
            503,
          );
        await sleep(this.pollMs);
      }
    } catch (err) {
      await leave();
      throw err;
    }
    return leave;
  }

  /**
   * A remover's side, before it re-checks and deletes a tag or manifest of `repository`.
   * Resolves to the claim (release it when done), or undefined when writers stayed in flight
   * for `contestBudgetMs`: leave the repository's content alone this time.
   */
  async claim(repository: string): Promise<RepositoryClaim | undefined> {
    if (!this.active) return FREE;
    const key = Layout.fenceRepoClaim(repository, randomUUID());
    const release = () => this.store.delete(key).catch(() => {});
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const claimedLocally = Date.now();
      await this.store.put(key, Buffer.alloc(0), { durable: false });
      try {
        const claimedAt = (await this.store.head(key)).modified.getTime();
        if (!(await this.writersInFlight(repository, claimedAt)))
          return { valid: () => Date.now() - claimedLocally < this.claimBudgetMs, release };
      } catch (err) {
        await release();
        throw err;
      }
      await release();
      if (Date.now() - started > this.contestBudgetMs) return undefined;
      // Backs off a little more each time, with jitter, so writers get through.
      await sleep(this.pollMs * Math.min(attempt + 1, 10) * (0.5 + Math.random()));
    }
  }

  /** Whether a writer is in flight in `repository`; dead writers' keys are removed. */
  private async writersInFlight(repository: string, claimedAt: number): Promise<boolean> {
    let live = false;
    for (const w of await listAllObjects(this.store, Layout.fenceRepoWriters(repository))) {
      if (claimedAt - w.modified.getTime() < this.staleWriterMs) live = true;
      else await this.store.delete(w.key).catch(() => {});
    }
    return live;
  }

  /** Whether a live remover's claim is on `repository`; dead removers' claims are removed. */
  private async claimed(repository: string): Promise<boolean> {
    let live = false;
    for (const c of await listAllObjects(this.store, Layout.fenceRepoClaims(repository))) {
      if (Date.now() - c.modified.getTime() < this.staleClaimMs) live = true;
      else await this.store.delete(c.key).catch(() => {});
    }
    return live;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
