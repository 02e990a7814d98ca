import type { Digest } from '@meridian/oci';
import type { RepositoryFence } from './repository-fence';
import type { FenceClaim, StoreFence } from './store-fence';

/**
 * Keeps garbage collection and the writers that create references apart, inside one node
 * (ADR 0012). Writers that link a blob into a repository or reference it from a manifest hold
 * `shared` locks on `repo:<name>` and `blob:<digest>` while they check and write; the collector
 * holds `exclusive` on one of those while it re-checks a candidate and deletes it. A collector
 * run also `watch`es: every digest referenced while it runs is live for that run, whatever its
 * listing saw.
 */
export class ContentGuard {
  private readonly locks = new Map<string, KeyLock>();
  private readonly watches = new Set<Set<string>>();
  /** Other nodes' collectors and writers, while the region has several nodes (ADR 0024). */
  fence?: StoreFence;
  /** Other nodes' purges and manifest writers, likewise (ADR 0021's addendum). */
  repositories?: RepositoryFence;

  /**
   * Runs `fn` holding every key shared (taken in sorted order, so two holders never deadlock).
   * With a fence, every blob key is stamped first and waits out another node's collector.
   */
  async shared<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    if (this.fence?.active)
      await this.fence.enter(
        keys.filter((k) => k.startsWith('blob:')).map((k) => k.slice('blob:'.length)),
      );
    const sorted = [...new Set(keys)].sort();
    const held: KeyLock[] = [];
    try {
      for (const k of sorted) {
        const lock = this.lock(k);
        await lock.acquire(false);
        held.push(lock);
      }
      return await fn();
    } finally {
      for (const lock of held.reverse()) this.release(lock, false);
    }
  }

  /**
   * `shared` for a write of a manifest or tag into `repository`: with peers, the write is first
   * announced in the store, so a purge on another node neither removes blind while it lands nor
   * holds the repository meanwhile (`removing`).
   */
  async writing<T>(repository: string, keys: string[], fn: () => Promise<T>): Promise<T> {
    const leave = await this.repositories?.enter(repository);
    try {
      return await this.shared(keys, fn);
    } finally {
      await leave?.();
    }
  }

  /**
   * A purge's removal from `repository`: `fn` runs holding `key` (the repository's lock)
   * exclusive and, with peers, a claim no manifest write on another node passes; `valid` turns
   * false once the claim is too old to act on. When writers stayed in flight on other nodes for
   * the fence's budget, `fn` does not run and `ifContested` is returned: nothing is removed.
   */
  async removing<T>(
    repository: string,
    key: string,
    fn: (valid: () => boolean) => Promise<T>,
    ifContested: T,
  ): Promise<T> {
    const claim = this.repositories ? await this.repositories.claim(repository) : undefined;
    if (this.repositories && !claim) return ifContested;
    try {
      return await this.exclusive(key, () => fn(() => claim?.valid() ?? true));
    } finally {
      await claim?.release();
    }
  }

  /** Runs `fn` holding `key` alone: it waits for shared holders, and new ones wait for it. */
  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const lock = this.lock(key);
    await lock.acquire(true);
    try {
      return await fn();
    } finally {
      this.release(lock, true);
    }
  }

  /** A collector's cross-node claim on a blob (uncontested while the node is alone). */
  async claim(digest: Digest): Promise<FenceClaim> {
    if (!this.fence) return { contested: false, valid: () => true, release: async () => {} };
    return this.fence.claim(digest);
  }

  /** After a blob's bytes are deleted: drops its fence stamp. */
  async forget(digest: Digest): Promise<void> {
    await this.fence?.forget(digest);
  }

  /** Records that `digest` was linked or referenced: live for every collector run watching. */
  referenced(digest: string): void {
    for (const w of this.watches) w.add(digest);
  }

  /** Starts collecting referenced digests until `stop`. */
  watch(): { seen: ReadonlySet<string>; stop: () => void } {
    const seen = new Set<string>();
    this.watches.add(seen);
    return { seen, stop: () => this.watches.delete(seen) };
  }

  private lock(key: string): KeyLock {
    let l = this.locks.get(key);
    if (!l) {
      l = new KeyLock(key);
      this.locks.set(key, l);
    }
    return l;
  }

  private release(lock: KeyLock, exclusive: boolean): void {
    lock.release(exclusive);
    if (lock.idle()) this.locks.delete(lock.key);
  }
}

/** A readers–writer lock that lets a waiting writer in before readers that came after it. */
class KeyLock {
  private readers = 0;
  private writer = false;
  private readonly queue: { exclusive: boolean; go: () => void }[] = [];

  constructor(readonly key: string) {}

  acquire(exclusive: boolean): Promise<void> {
    if (this.queue.length === 0 && this.canEnter(exclusive)) {
      this.enter(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push({ exclusive, go: resolve }));
  }

  release(exclusive: boolean): void {
    if (exclusive) this.writer = false;
    else this.readers--;
    while (this.queue.length > 0 && this.canEnter(this.queue[0]!.exclusive)) {
      const next = this.queue.shift()!;
      this.enter(next.exclusive);
      next.go();
      if (next.exclusive) break;
    }
  }

  idle(): boolean {
    return this.readers === 0 && !this.writer && this.queue.length === 0;
  }

  private canEnter(exclusive: boolean): boolean {
    return exclusive ? this.readers === 0 && !this.writer : !this.writer;
  }

  private enter(exclusive: boolean): void {
    if (exclusive) this.writer = true;
    else this.readers++;
  }
}
