import { OciError, parseDigest, type Digest } from '@meridian/oci';
import { Layout, NotFoundError, type ObjectStore } from '@meridian/storage';

export interface StoreFenceOptions {
  /** Whether the fence is needed: the region has (or may have) other nodes. */
  active: () => boolean;
  /** How long a writer waits for a collector's claim to go. Default 60 000 ms. */
  waitMs?: number;
  /** A claim older than this (by the store's clock) is a dead collector's: ignored. Default 120 000 ms. */
  staleClaimMs?: number;
  /** A stamp this recent (before the claim, by the store's clock) contests it. Default 300 000 ms. */
  recentStampMs?: number;
  /** A collector that took longer than this since claiming gives the blob up. Default 30 000 ms. */
  claimBudgetMs?: number;
  pollMs?: number;
}

/** A collector's hold on one blob. */
export interface FenceClaim {
  /** A writer referenced the blob lately (or may be about to): leave it alone this run. */
  contested: boolean;
  /** False once the claim is too old to act on (writers may have stopped waiting for it). */
  valid(): boolean;
  release(): Promise<void>;
}

const UNCONTESTED: FenceClaim = {
  contested: false,
  valid: () => true,
  release: async () => {},
};

/**
 * Keeps garbage collection on one node and writers on another apart through the region's own
 * store (ADR 0024), where the in-process `ContentGuard` cannot reach. It is Dekker's protocol
 * over a strongly consistent store:
 *
 * - a writer, before it references blob D, writes `stamp(D)`, then reads `claim(D)`; while a
 *   live claim is there it waits for it to go (then its own checks see whether D survived);
 * - a collector, before it unlinks or deletes D, writes `claim(D)`, then reads `stamp(D)`; a
 *   stamp written within `recentStampMs` of the claim contests it and D is left alone.
 *
 * Each side writes before it reads, so for any interleaving at least one of them sees the other.
 * Writes between the two (the writer's reference, the collector's delete) are therefore never
 * both made blind. Inactive while the node is alone: the `ContentGuard` suffices then.
 */
export class StoreFence {
  private readonly waitMs: number;
  private readonly staleClaimMs: number;
  private readonly recentStampMs: number;
  private readonly claimBudgetMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: StoreFenceOptions,
  ) {
    this.waitMs = opts.waitMs ?? 60_000;
    this.staleClaimMs = opts.staleClaimMs ?? 120_000;
    this.recentStampMs = opts.recentStampMs ?? 300_000;
    this.claimBudgetMs = opts.claimBudgetMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 50;
  }

  get active(): boolean {
    return this.opts.active();
  }

  /** A writer's side, before it references `digests` (`sha256:…` strings). */
  async enter(digests: string[]): Promise<void> {
    if (digests.length === 0 || !this.active) return;
    const ds = [...new Set(digests)].map((d) => parseDigest(d));
    await Promise.all(ds.map((d) => this.store.put(Layout.fenceStamp(d), Buffer.alloc(0))));
    const started = Date.now();
    for (;;) {
      const held = await Promise.all(ds.map((d) => this.liveClaim(d)));
      if (!held.some(Boolean)) return;
      if (Date.now() - started > this.waitMs)
        throw new OciError(
          'UNAVAILABLE',
          'garbage collection is deciding about a blob this request uses; retry',
          undefined,
          503,
        );
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /** A collector's side, before it unlinks or deletes `d`. Release it when done. */
  async claim(d: Digest): Promise<FenceClaim> {
    if (!this.active) return UNCONTESTED;
    const key = Layout.fenceClaim(d);
    const localStart = Date.now();
    await this.store.put(key, Buffer.alloc(0));
    const release = () => this.store.delete(key).catch(() => {});
    try {
      const claimedAt = (await this.store.head(key)).modified.getTime();
      const stamp = await this.info(Layout.fenceStamp(d));
      const contested = !!stamp && stamp.modified.getTime() >= claimedAt - this.recentStampMs;
      return {
        contested,
        valid: () => Date.now() - localStart < this.claimBudgetMs,
        release,
      };
    } catch (err) {
      await release();
      throw err;
    }
  }

  /** Forgets a deleted blob's stamp (after its bytes are gone). */
  async forget(d: Digest): Promise<void> {
    await this.store.delete(Layout.fenceStamp(d)).catch(() => {});
  }

  private async liveClaim(d: Digest): Promise<boolean> {
    const c = await this.info(Layout.fenceClaim(d));
    return !!c && Date.now() - c.modified.getTime() < this.staleClaimMs;
  }

  private async info(key: string): Promise<{ modified: Date } | undefined> {
    try {
      return await this.store.head(key);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }
}
