import type { Request, Response } from 'express';
import { OciError } from '@meridian/oci';
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
   * non-empty segment (percent-decoded, never containing `/`); a final `*` matches the rest.
   */
  path: string;
  need: Need;
  body?: BodyKind;
  handle(req: Request, res: Response, params: Record<string, string>): Promise<void> | void;
}

export interface MatchedAppRoute {
  route: AppRoute;
  params: Record<string, string>;
}

interface Compiled {
  route: AppRoute;
  segments: string[];
  rest: boolean;
}

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
      return { route, segments, rest };
    });
  }

  match(method: string, path: string): MatchedAppRoute {
    const parts = path.split('/').slice(1);
    const allowed = new Set<string>();
    for (const c of this.compiled) {
      const params = matchSegments(c, parts);
      if (!params) continue;
      const m = c.route.method;
      if (m === method || (m === 'GET' && method === 'HEAD')) return { route: c.route, params };
      allowed.add(m);
      if (m === 'GET') allowed.add('HEAD');
    }
    if (allowed.size > 0)
      throw new OciError('UNSUPPORTED', `${method} is not supported on this endpoint`, {
        allow: [...allowed].sort(),
      });
    throw new OciError('NAME_UNKNOWN', 'unknown API endpoint', undefined, 404);
  }
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
