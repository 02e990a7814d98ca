import { AsyncLocalStorage } from 'node:async_hooks';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { isDigestLike, OciError, parseDigest, type Descriptor } from '@meridian/oci';
import { BlobFill, FIRST_SEND, type Registry } from '@meridian/registry';
import { upstreamOf, type CacheRule, type CacheRules } from './cache-rules';
import type { ImagePlan } from './image-plan';
import { emptyProgress, Importer } from './importer';
import { cacheResults } from './metrics';
import type { RemoteManifest, RemoteRegistry, UpstreamCredentials } from './remote-registry';
import { RuleUpstreams } from './rule-upstreams';
import { UpstreamError } from './upstream-error';
import type { UpstreamGuard } from './upstream-guard';

/** How a response on a cached repository was served (`X-Meridian-Cache`). */
export type CacheStatus = 'hit' | 'miss' | 'revalidated' | 'stale';

export interface PullThroughDeps {
  rules: CacheRules;
  /** A credential set's username and password, by name. */
  credentials?: (name: string) => Promise<UpstreamCredentials>;
  log: Logger;
  /**
   * Per upstream request, until the response head; also how long a blob's body may send
   * nothing. Default 30 s.
   */
  timeoutMs?: number;
  /** Which addresses the upstreams may be reached at. Default: the default guard. */
  guard?: UpstreamGuard;
}

/** What a coalesced upstream operation answered. */
interface Fetched {
  status: CacheStatus;
  /** The image's root manifest, when it was (being) copied: served before it is stored. */
  root?: RemoteManifest;
  /** Settles when the copy is over (stored or failed); the operation is shared until then. */
  finished?: Promise<void>;
}

/**
 * An image being copied from the upstream, from the moment it is planned until it is stored:
 * its manifests and blobs are served from here meanwhile (blobs from their fills).
 */
interface Filling {
  rule: CacheRule;
  remote: RemoteRegistry;
  /** The upstream repository. */
  from: string;
  manifests: Map<string, RemoteManifest>;
  blobs: Map<string, Descriptor>;
  /** The blob fills this copy started or joined, by digest. */
  fills: Set<string>;
  finished: Promise<void>;
}

/** A blob fill shared by a cached image's clients and its copy. */
interface SharedFill {
  fill: Promise<BlobFill>;
  /** Keeps the fill joinable until the copy took its reader (or the copy is over). */
  release: () => void;
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
 *
 * A cold pull does not wait for the copy: the manifest is answered as soon as the image is
 * read (its manifests fetched and verified; its referrers are looked up after), and each blob
 * streams from a `BlobFill` — one upstream fetch, which the clients read while it arrives
 * (hashed to its digest as it passes) and the copy then stores without hashing it again.
 * Referrers (signatures, SBOMs) are copied too.
 */
export class PullThrough {
  private readonly inflight = new Map<string, Promise<Fetched>>();
  /** Images being copied, by local repository. */
  private readonly filling = new Map<string, Set<Filling>>();
  /** Blob fills in progress, by digest. */
  private readonly fills = new Map<string, SharedFill>();
  /** Set while the importer runs: its own reads of the registry are not a client's. */
  private readonly importing = new AsyncLocalStorage<true>();
  /** Why the last copy into a repository failed, and when. */
  private readonly failures = new Map<string, { error: UpstreamError; rule: string; at: number }>();
  /** When each cached tag was last confirmed against its upstream, ms. */
  private readonly validated = new Map<string, number>();
  private readonly upstreams: RuleUpstreams;
  private readonly importer: Importer;

  constructor(
    private readonly registry: Registry,
    private readonly deps: PullThroughDeps,
  ) {
    this.importer = new Importer(registry, { timeoutMs: deps.timeoutMs, guard: deps.guard });
    this.upstreams = new RuleUpstreams(deps);
  }

  /** Wraps the registry's reads; returns the function that unwraps them. */
  attach(): () => void {
    const { manifests, blobs } = this.registry;
    const get = manifests.get.bind(manifests);
    const resolve = manifests.resolve.bind(manifests);
    const read = blobs.read.bind(blobs);
    const stat = blobs.stat.bind(blobs);
    const peek = manifests.peek.bind(manifests);
    // The cache-only answer stays for repositories no rule covers: a covered tag may be due for
    // revalidation, which only `manifest` decides.
    manifests.peek = (repo, ref, countPull) =>
      this.deps.rules.coversKnown(repo) === false ? peek(repo, ref, countPull) : undefined;
    manifests.get = (repo, ref, countPull) =>
      this.manifest(repo, ref, () => get(repo, ref, countPull), countPull ?? true);
    manifests.resolve = (repo, ref) => this.manifest(repo, ref, () => resolve(repo, ref), false);
    blobs.read = (repo, digest, range) =>
      this.blob(repo, digest, range === undefined ? 'read' : 'range', () =>
        read(repo, digest, range),
      );
    blobs.stat = (repo, digest) => this.blob(repo, digest, 'stat', () => stat(repo, digest));
    return () => {
      manifests.peek = peek;
      manifests.get = get;
      manifests.resolve = resolve;
      blobs.read = read;
      blobs.stat = stat;
    };
  }

  /**
   * A blob of a cached repository: stored (`hit`), else — while its image is being copied —
   * from that copy (`miss`): a `GET` streams from the blob's fill, a `HEAD` is answered from the
   * manifest, a range waits for the copy.
   */
  private async blob<T extends object>(
    repo: string,
    digest: string,
    kind: 'read' | 'range' | 'stat',
    local: () => Promise<T>,
  ): Promise<T> {
    if (this.importing.getStore()) return local();
    let r: T;
    try {
      r = await local();
    } catch (err) {
      const unknown = err instanceof OciError && err.code === 'BLOB_UNKNOWN';
      const pending = unknown ? this.pendingBlob(repo, digest) : undefined;
      if (!pending) throw (unknown && this.failure(repo)) || err;
      return this.fromCopy(repo, pending, kind, local);
    }
    if (!(await this.deps.rules.match(repo))) return r;
    return { ...r, cache: 'hit' as CacheStatus };
  }

  private async fromCopy<T extends object>(
    repo: string,
    { image, blob }: { image: Filling; blob: Descriptor },
    kind: 'read' | 'range' | 'stat',
    local: () => Promise<T>,
  ): Promise<T> {
    const miss = (v: object): T => this.count(image.rule, v, 'miss') as unknown as T;
    await this.registry.blobs.repositoryLocks.assertReadable(repo);
    if (kind === 'stat') return miss({ digest: blob.digest, size: blob.size });
    // A range waits for the copy; a blob stored for another repository is linked, as the copy
    // would, rather than fetched.
    if (
      kind === 'range' ||
      (await this.registry.blobs.mount(repo, parseDigest(blob.digest), undefined))
    ) {
      await image.finished;
      return miss(await local());
    }
    const fill = await this.blobFill(image, blob).catch((err: unknown) => {
      throw err instanceof UpstreamError ? err.toOci(`cache rule "${image.rule.name}": `) : err;
    });
    if (fill.joinable) {
      // The route sends `file` (its reused buffers); `body` is there for any other reader.
      const file = fill.region();
      try {
        // Answered once the first send is there: a fill that dies before is a clean error.
        await fill.ready(Math.min(blob.size, FIRST_SEND));
      } catch (err) {
        await file.close();
        throw new OciError(
          'UNAVAILABLE',
          `cache rule "${image.rule.name}": ${(err as Error).message}`,
        );
      }
      const body: Readable = fill.reader(undefined, { lazy: true });
      return miss({ body, file, size: blob.size, length: blob.size, digest: blob.digest });
    }
    if (fill.error)
      throw new OciError('UNAVAILABLE', `cache rule "${image.rule.name}": ${fill.error.message}`);
    await image.finished; // the fill is over: the copy stored it
    return miss(await local());
  }

  /** For a blob asked for after its image's copy failed: that error (for a minute), naming the rule. */
  private failure(repo: string): OciError | undefined {
    const f = this.failures.get(repo);
    return f && Date.now() - f.at < 60_000 ? f.error.toOci(`cache rule "${f.rule}": `) : undefined;
  }

  /** The image being copied into `repo` that has blob `digest`, if any. */
  private pendingBlob(
    repo: string,
    digest: string,
  ): { image: Filling; blob: Descriptor } | undefined {
    for (const image of this.filling.get(repo) ?? []) {
      const blob = image.blobs.get(digest);
      if (blob) return { image, blob };
    }
    return undefined;
  }

  /**
   * The fill of blob `b` — the one in progress, or one started now: the single upstream fetch
   * of that blob, which the image's clients and its copy all read.
   */
  private blobFill(image: Filling, b: Descriptor): Promise<BlobFill> {
    image.fills.add(b.digest);
    const running = this.fills.get(b.digest);
    if (running) return running.fill;
    let release = (): void => {};
    const fill = (async () => {
      const up = await image.remote.blob(image.from, b.digest);
      if (!up) throw new OciError('BLOB_UNKNOWN', `${image.remote.host} has no blob ${b.digest}`);
      if (up.size !== b.size) {
        up.body.destroy();
        throw new OciError(
          'UNAVAILABLE',
          `${image.remote.host} sent blob ${b.digest} with ${up.size} bytes; the manifest says ${b.size}`,
        );
      }
      const started = await BlobFill.start(up.body, {
        digest: parseDigest(b.digest),
        length: b.size,
        stallTimeoutMs: this.deps.timeoutMs ?? 30_000,
      });
      release = started.hold();
      return started;
    })();
    const shared: SharedFill = { fill, release: () => release() };
    this.fills.set(b.digest, shared);
    const forget = (): void => {
      shared.release();
      if (this.fills.get(b.digest) === shared) this.fills.delete(b.digest);
    };
    shared.fill.then((f) => f.done).catch(forget);
    return shared.fill;
  }

  /**
   * The copy's source for a blob: a reader of the blob's fill (the one its clients read), once
   * the fill is complete — the copy's writing then never competes with the clients streaming
   * the fill in the one process (the spool is held for it meanwhile). The fill hashed the bytes
   * as they arrived and its reader ends only if they matched: the copy does not hash them again.
   */
  private async copyFrom(
    image: Filling,
    b: Descriptor,
  ): Promise<{ body: Readable; size: number; verified: boolean }> {
    const fill = await this.blobFill(image, b);
    await fill.done.catch(() => {}); // a failed fill fails the copy just below
    const body = fill.reader();
    this.fills.get(b.digest)?.release();
    return { body, size: b.size, verified: true };
  }

  async manifest<T extends { digest: string }>(
    repo: string,
    ref: string,
    local: () => Promise<T>,
    countPull = false,
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
    if (!have && isDigestLike(ref))
      for (const image of this.filling.get(repo) ?? []) {
        const m = image.manifests.get(ref);
        if (m) return this.served<T>(rule, repo, ref, m, 'miss', countPull);
      }
    let fetched: Fetched;
    try {
      fetched = await this.coalesce(key, () => this.fetch(rule, repo, ref, have?.digest));
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
    if (fetched.root)
      return this.served<T>(rule, repo, ref, fetched.root, fetched.status, countPull);
    return this.count(rule, await local(), fetched.status);
  }

  /** A manifest of an image being copied, answered before it is stored (locks still apply). */
  private async served<T>(
    rule: CacheRule,
    repo: string,
    ref: string,
    m: RemoteManifest,
    status: CacheStatus,
    countPull: boolean,
  ): Promise<T & { cache: CacheStatus }> {
    const { manifests } = this.registry;
    const tag = isDigestLike(ref) ? undefined : ref;
    await manifests.locks.assertReadable(repo, { tag, digest: m.digest });
    if (countPull) manifests.pulls?.record(repo, tag, m.digest);
    const v = { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length, bytes: m.bytes };
    return this.count(rule, v as unknown as T, status);
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

  /**
   * One upstream operation per (repository, reference) at a time, until its copy is over; the
   * others share its answer.
   */
  private coalesce(key: string, fn: () => Promise<Fetched>): Promise<Fetched> {
    const running = this.inflight.get(key);
    if (running) return running;
    const op = fn();
    this.inflight.set(key, op);
    const forget = (): void => {
      if (this.inflight.get(key) === op) this.inflight.delete(key);
    };
    op.then((f) => f.finished).then(forget, forget);
    return op;
  }

  /**
   * A tag already here (`current`) is revalidated with a `HEAD` and copied only when it moved;
   * anything else is copied (the whole image, referrers included). Resolves once the image is
   * planned, with its root manifest; the copy goes on (`finished`).
   */
  private async fetch(
    rule: CacheRule,
    repo: string,
    ref: string,
    current: string | undefined,
  ): Promise<Fetched> {
    const up = upstreamOf(rule, repo)!;
    const remote = await this.upstreams.remote(rule, up.baseUrl);
    const limiter = this.upstreams.limiter(rule);
    const key = `${repo}\0${ref}`;
    if (current) {
      const head = await limiter.run(() => remote.headManifest(up.repository, ref));
      if (head?.digest === current) {
        this.validated.set(key, Date.now());
        return { status: 'revalidated' };
      }
    }
    const digest = isDigestLike(ref);
    let planned!: (plan: ImagePlan) => void;
    const plan = new Promise<ImagePlan>((resolve) => (planned = resolve));
    const image: Filling = {
      rule,
      remote,
      from: up.repository,
      manifests: new Map(),
      blobs: new Map(),
      fills: new Set(),
      finished: Promise.resolve(),
    };
    // The image is served from the moment it is read (its referrers are looked up after); what
    // the full plan adds (referrers and their blobs) is served from then on.
    const known = (p: ImagePlan): void => {
      for (const m of p.manifests) image.manifests.set(m.digest, m);
      for (const b of p.blobs) image.blobs.set(b.digest, b);
      let images = this.filling.get(repo);
      if (!images) this.filling.set(repo, (images = new Set()));
      images.add(image);
      planned(p);
    };
    const copy = limiter.run(() =>
      this.importing.run(true, () =>
        this.importer.run(
          {
            source: `${up.registry}/${up.repository}${digest ? '@' : ':'}${ref}`,
            images: [digest ? repo : `${repo}:${ref}`],
            force: true,
          },
          emptyProgress(),
          remote,
          {
            sketched: known,
            planned: known,
            openBlob: (_from, b) => this.copyFrom(image, b),
          },
        ),
      ),
    );
    image.finished = copy.then(
      () => {
        if (!digest) this.validated.set(key, Date.now());
        this.failures.delete(repo);
      },
      (err: unknown) => {
        if (err instanceof UpstreamError)
          this.failures.set(repo, { error: err, rule: rule.name, at: Date.now() });
        this.deps.log.warn(
          { rule: rule.name, repository: repo, err: (err as Error).message },
          'cache: copying the image failed',
        );
      },
    );
    void image.finished.then(() => {
      const images = this.filling.get(repo);
      images?.delete(image);
      if (images?.size === 0) this.filling.delete(repo);
      for (const d of image.fills) this.fills.get(d)?.release();
    });
    // The copy failing before the image was planned is this request's error.
    const { root } = await Promise.race([plan, copy.then(() => plan)]);
    return { status: 'miss', root, finished: image.finished };
  }
}
