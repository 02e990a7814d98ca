/**
 * Repository patterns in role assignments and scope maps: an exact name (`library/alpine`), `*`
 * for every repository, or a name with `*` wildcards (`team-a/*`) where `*` matches any run of
 * characters, slashes included — `team-a/*` covers `team-a/app` and `team-a/tools/lint`.
 */
const PATTERN = /^(\*|[a-z0-9*]+(?:(?:[._]|__|-+|\/)[a-z0-9*]+)*)$/;

const compiled = new Map<string, RegExp>();

/** Whether `p` is a valid repository pattern (the OCI name grammar with `*` allowed). */
export function isValidPattern(p: string): boolean {
  return p.length > 0 && p.length <= 255 && PATTERN.test(p);
}

/** Whether repository `name` matches `pattern`. */
export function matchesPattern(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*')) return pattern === name;
  let re = compiled.get(pattern);
  if (!re) {
    const body = pattern
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${body}$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(name);
}
