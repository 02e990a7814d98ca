import type { Logger } from 'pino';
import { isDigestLike, OciError } from '@meridian/oci';
import type { Registry } from '@meridian/registry';
import { upstreamOf, type CacheRule, type CacheRules } from './cache-rules';
import { emptyProgress, Importer, type ImportProgress } from './importer';
import { cacheResults } from './metrics';
import { RemoteRegistry, type UpstreamCredentials } from './remote-registry';
import { RuleLimiter } from './rule-limiter';
import { UpstreamError } from './upstream-error';
import type { UpstreamGuard } from './upstream-guard';

/** How a response on a cached repository was served (`X-Meridian-Cache`). */
export type CacheStatus = 'hit' | 'miss' | 'revalidated' | 'stale';

export interface PullThroughDeps {
  rules: CacheRules;
  /** A credential set's username and password, by name. */
  credentials?: (name: string) => Promise<UpstreamCredentials>;
  log: Logger;
  /** Per upstream request, until the response head. Default 30 s. */
  timeoutMs?: number;
  /** Which addresses the upstreams may be reached at. Default: the default guard. */
  guard?: UpstreamGuard;
}

/**
 * Pull-through cache rules on the primary (ADR 0019), attached by decoration: the registry's
 * manifest and blob reads are wrapped, no route calls this. A manifest missing from a cached
 * repository is copied from the upstream — the whole image, digest-verified, through the
 * registry's own stores, once however many clients ask — and then served like pushed content
 * (replicated, lockable, subject to retention). A cached tag older than the rule's `tagTtl` is
 * revalidated with a `HEAD`; a digest never is. When the upstream is down, slow or answers
 * `429`, the cached copy is served (`stale`) and the rule backs off; a miss that cannot be
 * served is a `429`/`503` naming the rule. Replicas need nothing: their misses reach the
 * primary, which applies the rule, so the upstream is asked once per image, not per region.
 */
export class PullThrough {
  private readonly inflight = new Map<string, Promise<CacheStatus>>();
  /** When each cached tag was last confirmed against its upstream, ms. */
  private readonly validated = new Map<string, number>();
  private readonly limiters = new Map<string, RuleLimiter>();
  private readonly remotes = new Map<string, RemoteRegistry>();
  private readonly importer: Importer;

  constructor(
    private readonly registry: Registry,
    private readonly deps: PullThroughDeps,
  ) {
    this.importer = new Importer(registry, { timeoutMs: deps.timeoutMs, guard: deps.guard });
  }

  /** Wraps the registry's reads; returns the function that unwraps them. */
  attach(): () => void {
    const { manifests, blobs } = this.registry;
    const get = manifests.get.bind(manifests);
    const resolve = manifests.resolve.bind(manifests);
    const read = blobs.read.bind(blobs);
    const stat = blobs.stat.bind(blobs);
    manifests.get = (repo, ref, countPull) =>
      this.manifest(repo, ref, () => get(repo, ref, countPull));
    manifests.resolve = (repo, ref) => this.manifest(repo, ref, () => resolve(repo, ref));
    blobs.read = (repo, digest, range) => this.blob(repo, () => read(repo, digest, range));
    blobs.stat = (repo, digest) => this.blob(repo, () => stat(repo, digest));
    return () => {
      manifests.get = get;
      manifests.resolve = resolve;
      blobs.read = read;
      blobs.stat = stat;
    };
  }

  private async blob<T extends object>(repo: string, local: () => Promise<T>): Promise<T> {
    const r = await local();
    if (!(await this.deps.rules.match(repo))) return r;
    return { ...r, cache: 'hit' as CacheStatus };
  }

  async manifest<T extends { digest: string }>(
    repo: string,
    ref: string,
    local: () => Promise<T>,
  ): Promise<T & { cache?: CacheStatus }> {
    const rule = await this.deps.rules.match(repo);
    if (!rule) return local();
    let have: T | undefined;
    try {
      have = await local();
    } catch (err) {
      if (!(err instanceof OciError && err.code === 'MANIFEST_UNKNOWN')) throw err;
    }
    const key = `${repo}\0${ref}`;
    if (have && (isDigestLike(ref) || this.isFresh(rule, key)))
      return this.count(rule, have, 'hit');
    let status: CacheStatus;
    try {
      status = await this.coalesce(key, () => this.fetch(rule, repo, ref, have?.digest));
    } catch (err) {
      if (have && err instanceof UpstreamError && err.kind !== 'not-found') {
        this.deps.log.warn(
          { rule: rule.name, repository: repo, err: err.message },
          'cache: upstream failed; serving the cached tag',
        );
        return this.count(rule, have, 'stale');
      }
      if (err instanceof UpstreamError) throw err.toOci(`cache rule "${rule.name}": `);
      throw err;
    }
    return this.count(rule, await local(), status);
  }

  private count<T>(rule: CacheRule, v: T, status: CacheStatus): T & { cache: CacheStatus } {
    cacheResults.inc({ result: status });
    void rule;
    return { ...v, cache: status };
  }

  private isFresh(rule: CacheRule, key: string): boolean {
    const at = this.validated.get(key);
    return at !== undefined && Date.now() - at < rule.tagTtlSeconds * 1000;
  }

  /** One upstream operation per (repository, reference) at a time; the others wait for it. */
  private coalesce(key: string, fn: () => Promise<CacheStatus>): Promise<CacheStatus> {
    let p = this.inflight.get(key);
    if (!p) {
      p = fn().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /**
   * A tag already here (`current`) is revalidated with a `HEAD` and copied only when it moved;
   * anything else is copied (the whole image).
   */
  private async fetch(
    rule: CacheRule,
    repo: string,
    ref: string,
    current: string | undefined,
  ): Promise<CacheStatus> {
    const up = upstreamOf(rule, repo)!;
    const remote = await this.remote(rule, up.baseUrl);
    const limiter = this.limiter(rule);
    const key = `${repo}\0${ref}`;
    if (current) {
      const head = await limiter.run(() => remote.headManifest(up.repository, ref));
      if (head?.digest === current) {
        this.validated.set(key, Date.now());
        return 'revalidated';
      }
    }
    const progress: ImportProgress = emptyProgress();
    const digest = isDigestLike(ref);
    await limiter.run(() =>
      this.importer.run(
        {
          source: `${up.registry}/${up.repository}${digest ? '@' : ':'}${ref}`,
          images: [digest ? repo : `${repo}:${ref}`],
          force: true,
          referrers: false,
        },
        progress,
        remote,
      ),
    );
    if (!digest) this.validated.set(key, Date.now());
    return 'miss';
  }

  private limiter(rule: CacheRule): RuleLimiter {
    const key = `${rule.name}\0${rule.updatedAt}`;
    let l = this.limiters.get(key);
    if (!l) {
      l = new RuleLimiter(rule.name, rule.concurrency, rule.ratePerSecond);
      this.limiters.set(key, l);
    }
    return l;
  }

  private async remote(rule: CacheRule, baseUrl: string): Promise<RemoteRegistry> {
    const key = `${rule.name}\0${rule.updatedAt}`;
    let r = this.remotes.get(key);
    if (!r) {
      const credentials =
        rule.credentialSet && this.deps.credentials
          ? await this.deps.credentials(rule.credentialSet)
          : undefined;
      r = new RemoteRegistry({
        baseUrl,
        credentials,
        credentialName: rule.credentialSet
          ? `the credentials of credential set "${rule.credentialSet}"`
          : undefined,
        timeoutMs: this.deps.timeoutMs,
        guard: this.deps.guard,
      });
      this.remotes.set(key, r);
    }
    return r;
  }
}
