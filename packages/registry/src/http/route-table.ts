import type { Request, Response } from 'express';
import { isValidName, OciError } from '@meridian/oci';
import type { Need } from './auth-gate';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** How a route's request body is parsed before its handler runs. */
export type BodyKind = 'json' | 'form';

/**
 * One route outside `/v2`: the method and path it owns, the permission it needs and its
 * handler. The same entry authorizes and dispatches a request, so the two cannot disagree.
 */
export interface AppRoute {
  method: Method;
  /**
   * Literal segments, matched case-sensitively against the path as sent; `:name` matches one
   * non-empty segment (percent-decoded, never containing `/`); a final `*` matches the rest;
   * `:repository+` (at most one per template) matches a repository name of one or more segments,
   * percent-decoded once as a whole and then held to the name grammar (ADR 0020).
   */
  path: string;
  /**
   * What the request needs. A repository need whose `name` is `:repository` is completed with
   * the matched name: the name the gate checks is the name the handler gets.
   */
  need: Need;
  body?: BodyKind;
  handle(req: Request, res: Response, params: Record<string, string>): Promise<void> | void;
}

export interface MatchedAppRoute {
  route: AppRoute;
  params: Record<string, string>;
  /** The route's need on the matched request (a `:repository` need names the repository). */
  need: Need;
}

interface Compiled {
  route: AppRoute;
  segments: string[];
  rest: boolean;
  /** Index of the `:repository+` segment, or -1. */
  name: number;
}

/** The multi-segment repository parameter of a template. */
const NAME_PARAM = ':repository+';

/**
 * The route table of a process's non-`/v2` endpoints. `match` is the only way a request
 * reaches a handler: a path no route owns is `404` and a method a path does not accept is
 * `405`, both before authentication or any handler runs. `GET` routes answer `HEAD` too.
 */
export class RouteTable {
  private readonly compiled: Compiled[];

  constructor(readonly routes: readonly AppRoute[]) {
    this.compiled = routes.map((route) => {
      const segments = route.path.split('/').slice(1);
      const rest = segments[segments.length - 1] === '*';
      if (rest) segments.pop();
      return { route, segments, rest, name: segments.indexOf(NAME_PARAM) };
    });
  }

  match(method: string, path: string): MatchedAppRoute {
    const parts = path.split('/').slice(1);
    const allowed = new Set<string>();
    let badName: string | undefined;
    for (const c of this.compiled) {
      const params = c.name < 0 ? matchSegments(c, parts) : matchNamed(c, parts);
      if (!params) continue;
      if (params.repository !== undefined && !isValidName(params.repository)) {
        badName ??= params.repository;
        continue;
      }
      const m = c.route.method;
      if (m === method || (m === 'GET' && method === 'HEAD'))
        return { route: c.route, params, need: needFor(c.route.need, params) };
      allowed.add(m);
      if (m === 'GET') allowed.add('HEAD');
    }
    if (allowed.size > 0)
      throw new OciError('UNSUPPORTED', `${method} is not supported on this endpoint`, {
        allow: [...allowed].sort(),
      });
    if (badName !== undefined)
      throw new OciError('NAME_INVALID', `invalid repository name: ${badName.slice(0, 256)}`, {
        name: badName.slice(0, 256),
      });
    throw new OciError('NAME_UNKNOWN', 'unknown API endpoint', undefined, 404);
  }
}

function needFor(need: Need, params: Record<string, string>): Need {
  if (need.kind === 'repository' && need.name === ':repository')
    return { ...need, name: params.repository! };
  return need;
}

/**
 * A template with `:repository+`: the segments before and after it match as usual, the name
 * takes what is left between them (at least one segment), decoded once as a whole.
 */
function matchNamed(c: Compiled, parts: string[]): Record<string, string> | undefined {
  const before = c.segments.slice(0, c.name);
  const after = c.segments.slice(c.name + 1);
  const nameLength = parts.length - before.length - after.length;
  if (nameLength < 1) return undefined;
  const head = matchSegments({ ...c, segments: before, rest: false }, parts.slice(0, c.name));
  const tail = matchSegments(
    { ...c, segments: after, rest: false },
    parts.slice(parts.length - after.length),
  );
  if (!head || !tail) return undefined;
  const raw = parts.slice(c.name, c.name + nameLength).join('/');
  let repository: string;
  try {
    repository = decodeURIComponent(raw);
  } catch {
    throw new OciError('NAME_INVALID', 'malformed percent-encoding in the path');
  }
  return { ...head, ...tail, repository };
}

function matchSegments(c: Compiled, parts: string[]): Record<string, string> | undefined {
  if (c.rest ? parts.length < c.segments.length : parts.length !== c.segments.length)
    return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < c.segments.length; i++) {
    const want = c.segments[i]!;
    const got = parts[i]!;
    if (want[0] !== ':') {
      if (want !== got) return undefined;
      continue;
    }
    if (got === '') return undefined;
    let value: string;
    try {
      value = decodeURIComponent(got);
    } catch {
      throw new OciError('NAME_INVALID', 'malformed percent-encoding in the path');
    }
    if (value.includes('/') || value === '.' || value === '..') return undefined;
    params[want.slice(1)] = value;
  }
  if (c.rest) params['*'] = parts.slice(c.segments.length).join('/');
  return params;
}
