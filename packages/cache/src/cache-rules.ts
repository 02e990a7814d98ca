import { isValidName, OciError } from '@meridian/oci';
import { listAllKeys, readJson, type ObjectStore } from '@meridian/storage';
import { parseSourceRef } from './source-ref';

/** Where cache rules live in the primary region's object store (never replicated). */
export const CACHE_RULES_ROOT = '_cache/rules/';

/** A pull-through rule: a namespace of another registry served as local repositories. */
export interface CacheRule {
  name: string;
  /** `docker.io/library/*`, `ghcr.io/org/*`, `127.0.0.1:5000/lib/app` (no `*`: one repository). */
  source: string;
  /** `hub/library/*`: the local repositories the source's are served as. */
  target: string;
  credentialSet?: string;
  /** How long a cached tag is served before it is revalidated with a `HEAD`, s. Default 300. */
  tagTtlSeconds: number;
  /** Upstream fetches in flight at once for this rule, per node. Default 4. */
  concurrency: number;
  /** Upstream requests per second for this rule, per node. Default 10. */
  ratePerSecond: number;
  createdAt: string;
  updatedAt: string;
}

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,49}$/;
const DEFAULTS = { tagTtlSeconds: 300, concurrency: 4, ratePerSecond: 10 };

/** The upstream a local repository maps to under `rule`, or undefined when it does not match. */
export function upstreamOf(
  rule: Pick<CacheRule, 'source' | 'target'>,
  repository: string,
): { baseUrl: string; registry: string; repository: string } | undefined {
  const wild = rule.target.endsWith('/*');
  const prefix = wild ? rule.target.slice(0, -1) : rule.target;
  let rest: string;
  if (wild) {
    if (!repository.startsWith(prefix) || repository.length === prefix.length) return undefined;
    rest = repository.slice(prefix.length);
  } else {
    if (repository !== rule.target) return undefined;
    rest = '';
  }
  const src = parseSourceRef(wild ? rule.source.slice(0, -2) + '/x' : rule.source);
  const base = wild ? src.repository.slice(0, -'/x'.length) : src.repository;
  const upstreamRepo = wild ? `${base}/${rest}` : base;
  return { baseUrl: src.baseUrl, registry: src.registry, repository: upstreamRepo };
}

/**
 * Cache rules (ADR 0019), one JSON object each under `_cache/rules/<name>` in the primary's
 * store. `all()` is cached for two seconds, so a change made on one node applies everywhere
 * within that time.
 */
export class CacheRules {
  private cached: { at: number; rules: Promise<CacheRule[]>; settled?: CacheRule[] } | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: {
      ttlMs?: number;
      credentialSetExists?: (n: string) => Promise<void>;
      /** Throws when the upstream's address is refused (an IP literal the guard refuses). */
      checkUpstream?: (baseUrl: string) => void;
    } = {},
  ) {}

  /** The rule whose target covers `repository`, if any. */
  async match(repository: string): Promise<CacheRule | undefined> {
    for (const r of await this.all()) if (upstreamOf(r, repository)) return r;
    return undefined;
  }

  /**
   * Whether a rule covers `repository`, answered from memory while the rule list read by `all`
   * is fresh; undefined when only a read can say (then `match`). Lets a hot read skip a promise.
   */
  coversKnown(repository: string): boolean | undefined {
    const c = this.cached;
    if (!c?.settled || Date.now() - c.at >= (this.opts.ttlMs ?? 2000)) return undefined;
    return c.settled.some((r) => upstreamOf(r, repository) !== undefined);
  }

  all(): Promise<CacheRule[]> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < (this.opts.ttlMs ?? 2000)) return this.cached.rules;
    const rules = (async () => {
      const keys = await listAllKeys(this.store, CACHE_RULES_ROOT);
      const all = await Promise.all(keys.map((k) => readJson<CacheRule>(this.store, k)));
      return all
        .filter((r): r is CacheRule => r !== undefined)
        .sort((a, b) => a.name.localeCompare(b.name));
    })();
    const cached: NonNullable<typeof this.cached> = { at: now, rules };
    this.cached = cached;
    rules.then((r) => (cached.settled = r)).catch(() => undefined);
    rules.catch(() => {
      if (this.cached?.rules === rules) this.cached = undefined;
    });
    return rules;
  }

  async list(): Promise<CacheRule[]> {
    return this.all();
  }

  async show(name: string): Promise<CacheRule> {
    const r = NAME_RE.test(name)
      ? await readJson<CacheRule>(this.store, CACHE_RULES_ROOT + name)
      : undefined;
    if (!r)
      throw new OciError('NAME_UNKNOWN', `no cache rule "${name.slice(0, 64)}"`, undefined, 404);
    return r;
  }

  async create(input: Record<string, unknown>): Promise<CacheRule> {
    const name = input.name;
    if (typeof name !== 'string' || !NAME_RE.test(name))
      throw bad('"name" must be 1-50 lowercase letters, digits and dashes');
    if (await readJson(this.store, CACHE_RULES_ROOT + name))
      throw new OciError('DENIED', `cache rule "${name}" exists`, undefined, 409);
    const now = new Date().toISOString();
    const rule = await this.checked({
      ...DEFAULTS,
      ...pick(input),
      name,
      createdAt: now,
      updatedAt: now,
    });
    await this.write(rule);
    return rule;
  }

  async update(name: string, input: Record<string, unknown>): Promise<CacheRule> {
    const old = await this.show(name);
    const rule = await this.checked({
      ...old,
      ...pick(input),
      updatedAt: new Date().toISOString(),
    });
    await this.write(rule);
    return rule;
  }

  async delete(name: string): Promise<void> {
    await this.show(name);
    await this.store.delete(CACHE_RULES_ROOT + name);
    this.cached = undefined;
  }

  private async checked(r: Record<string, unknown>): Promise<CacheRule> {
    const { source, target } = r;
    if (typeof source !== 'string' || typeof target !== 'string')
      throw bad('"source" (REGISTRY/NAMESPACE/*) and "target" (LOCAL/NAMESPACE/*) are required');
    if (source.endsWith('/*') !== target.endsWith('/*'))
      throw bad('"source" and "target" both end with /* or neither does');
    const targetName = target.endsWith('/*') ? target.slice(0, -2) : target;
    if (!isValidName(targetName)) throw bad('"target" is not a repository name (or NAME/*)');
    let baseUrl: string;
    try {
      baseUrl = parseSourceRef(source.endsWith('/*') ? `${source.slice(0, -2)}/x` : source).baseUrl;
    } catch (err) {
      throw bad(`"source": ${(err as Error).message}`);
    }
    try {
      this.opts.checkUpstream?.(baseUrl);
    } catch (err) {
      throw bad(
        `"source": ${(err as Error).message}, refused as an upstream (an operator can allow it with upstream.allowAddresses)`,
      );
    }
    if (/[:@]/.test(source.split('/').slice(1).join('/')))
      throw bad('"source" names a namespace, without a tag or digest');
    for (const k of ['tagTtlSeconds', 'concurrency', 'ratePerSecond'] as const) {
      const v = r[k];
      if (
        typeof v !== 'number' ||
        !Number.isFinite(v) ||
        v < (k === 'tagTtlSeconds' ? 0 : 1) ||
        v > 86_400 * 30
      )
        throw bad(`"${k}" must be a number ≥ ${k === 'tagTtlSeconds' ? 0 : 1}`);
    }
    if (r.credentialSet !== undefined) {
      if (typeof r.credentialSet !== 'string') throw bad('"credentialSet" must be a name');
      await this.opts.credentialSetExists?.(r.credentialSet);
    }
    const others = (await this.all()).filter((o) => o.name !== r.name);
    const clash = others.find((o) => overlaps(o.target, target));
    if (clash)
      throw new OciError(
        'DENIED',
        `"target" overlaps cache rule "${clash.name}" (${clash.target})`,
        undefined,
        409,
      );
    return r as unknown as CacheRule;
  }

  private async write(rule: CacheRule): Promise<void> {
    await this.store.put(CACHE_RULES_ROOT + rule.name, Buffer.from(JSON.stringify(rule)), {
      contentType: 'application/json',
    });
    this.cached = undefined;
  }
}

function overlaps(a: string, b: string): boolean {
  const base = (t: string) => (t.endsWith('/*') ? t.slice(0, -1) : `${t}/`);
  return base(a).startsWith(base(b)) || base(b).startsWith(base(a));
}

function pick(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of [
    'source',
    'target',
    'credentialSet',
    'tagTtlSeconds',
    'concurrency',
    'ratePerSecond',
  ])
    if (input[k] !== undefined) out[k] = input[k];
  return out;
}

function bad(message: string): OciError {
  return new OciError('UNSUPPORTED', message, undefined, 400);
}
