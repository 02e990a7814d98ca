/**
 * Webhook scopes: ACR's grammar plus globs on repository names.
 *
 * - `''` (empty): every repository and tag.
 * - `repo:tag` — that tag of that repository; `repo:*` — any tag; `repo` alone = `repo:latest`.
 * - Globs: in the repository part `*` matches within one path segment and `**` across segments
 *   (`team-a/**:v*`); in the tag part `*` matches any run of characters.
 *
 * An event without a tag (a push or delete by digest) matches a scope whose tag part is `*`.
 */
export interface Scope {
  repository: RegExp;
  /** Undefined: any tag, and events without one. */
  tag: RegExp | undefined;
}

const REPO_GLOB = /^[a-z0-9*]+(?:(?:[._/]|__|-+)[a-z0-9*]+)*$/;
const TAG_GLOB = /^[\w*][\w.*-]{0,127}$/;

/** Parses a scope; throws an Error naming what is wrong. */
export function parseScope(scope: string): Scope {
  const s = scope.trim();
  if (s === '') return { repository: /^/, tag: undefined };
  const i = s.indexOf(':');
  const repo = i < 0 ? s : s.slice(0, i);
  const tag = i < 0 ? 'latest' : s.slice(i + 1);
  if (!REPO_GLOB.test(repo.replace(/\*\*/g, '*')))
    throw new Error(`invalid scope ${scope}: the repository part is not a name or a glob`);
  if (!TAG_GLOB.test(tag)) throw new Error(`invalid scope ${scope}: the tag part is not a tag`);
  return {
    repository: new RegExp(`^${globSource(repo, '[^/]*')}$`),
    tag: tag === '*' ? undefined : new RegExp(`^${globSource(tag, '.*')}$`),
  };
}

/** Whether an event on `repository` (with `tag`, when it has one) is in the scope. */
export function scopeMatches(scope: Scope, repository: string, tag: string | undefined): boolean {
  if (!scope.repository.test(repository)) return false;
  if (!scope.tag) return true;
  return tag !== undefined && scope.tag.test(tag);
}

function globSource(glob: string, star: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `a/**/b` also matches `a/b`; a trailing `/**` also matches the prefix itself.
      if (glob[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += star;
    else out += c.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return out;
}
