/**
 * `X-Meridian-Cache: hit|miss|revalidated|stale` for a read a pull-through cache rule served
 * (ADR 0019): the rule's plugin marks the domain result with `cache`; nothing otherwise.
 */
export function cacheHeader(result: object): Record<string, string> {
  const c = (result as { cache?: unknown }).cache;
  return typeof c === 'string' ? { 'X-Meridian-Cache': c } : {};
}
