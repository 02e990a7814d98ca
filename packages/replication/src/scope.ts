import picomatch from 'picomatch';

/** What a replica region replicates (config `regions[].scope`). */
export interface RegionScopeConfig {
  /** Repository globs the region replicates (`team-a/**`, `base/*`). Default: every repository. */
  repositories?: string[];
  /** Repository globs it does not, even when `repositories` matches. */
  exclude?: string[];
  /**
   * Whether what the region serves by fallback for a repository outside its scope is copied in
   * and kept fresh (true), or only served (false, the default).
   */
  keepFetched?: boolean;
}

/**
 * A replica region's replication scope (ADR 0026). Inside it, a repository is replicated as
 * always. Outside it, the region is served by fallback to the primary; nothing is queued for it
 * except changes to what the region still holds (so nothing it holds outlives the primary's
 * copy), and — unless `keepFetched` — what it held before the scope changed is removed.
 */
export class RegionScope {
  private readonly include: (name: string) => boolean;
  private readonly excluded: (name: string) => boolean;
  readonly keepFetched: boolean;
  readonly everything: boolean;

  constructor(readonly config: RegionScopeConfig = {}) {
    const opts = { dot: true };
    const inc = config.repositories ?? [];
    const exc = config.exclude ?? [];
    this.everything = inc.length === 0 && exc.length === 0;
    this.include = inc.length === 0 ? () => true : picomatch(inc, opts);
    this.excluded = exc.length === 0 ? () => false : picomatch(exc, opts);
    this.keepFetched = config.keepFetched ?? false;
  }

  /** Whether the region replicates `repository`. */
  covers(repository: string): boolean {
    return this.everything || (this.include(repository) && !this.excluded(repository));
  }

  /** Checks the globs (picomatch throws on none; an empty string matches nothing useful). */
  static validate(config: RegionScopeConfig): string | undefined {
    for (const g of [...(config.repositories ?? []), ...(config.exclude ?? [])]) {
      if (g.trim() === '' || g.length > 256)
        return `scope pattern ${JSON.stringify(g)} is empty or too long`;
      try {
        picomatch.makeRe(g);
      } catch (err) {
        return `scope pattern ${JSON.stringify(g)}: ${(err as Error).message}`;
      }
    }
    return undefined;
  }
}

/** Scopes by region name; a region without an entry replicates everything. */
export type RegionScopes = ReadonlyMap<string, RegionScope>;

export function scopeOf(scopes: RegionScopes | undefined, region: string): RegionScope | undefined {
  const s = scopes?.get(region);
  return s && !s.everything ? s : undefined;
}
