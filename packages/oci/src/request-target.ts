/**
 * The one parse of an HTTP request target (RFC 9112 §3.2). Every process routes and authorizes
 * on what this returns, so the path a permission is decided on is the path that is dispatched.
 *
 * - origin-form `/v2/a/b?x=1` → path `/v2/a/b`, query `?x=1`;
 * - absolute-form `http://host:5000/v2/?x=1` → path `/v2/`, query `?x=1`, authority `host:5000`
 *   (§3.2.2: the authority replaces the Host header);
 * - asterisk-form, authority-form, anything else → undefined (the caller answers 400).
 *
 * The path is returned exactly as sent — not percent-decoded, not dot-resolved, not case-folded.
 * Routes match it literally, segment by segment, so a variant (`/ADMIN`, `//`, `/./`, `%61dmin`,
 * `;param`, a trailing slash) matches no route and is a 404, never another route.
 */
export interface RequestTarget {
  /** The path as sent, starting with `/`. */
  path: string;
  /** `?…` or the empty string. */
  query: string;
  /** The authority of an absolute-form target. */
  authority?: string;
}

/** Longest request target accepted (Node's own header limit is 16 KiB for the whole head). */
export const MAX_REQUEST_TARGET = 8192;

const ABSOLUTE = /^https?:\/\/([^/?#\s]*)/i;

export function parseRequestTarget(raw: string | undefined): RequestTarget | undefined {
  if (!raw || raw.length > MAX_REQUEST_TARGET) return undefined;
  let rest = raw;
  let authority: string | undefined;
  if (raw[0] !== '/') {
    const m = ABSOLUTE.exec(raw);
    if (!m || m[1] === '' || m[1]!.includes('@')) return undefined;
    authority = m[1]!;
    rest = raw.slice(m[0].length);
    if (rest === '' || rest[0] === '?') rest = `/${rest}`;
    if (rest[0] !== '/') return undefined;
  }
  // A fragment is never sent by a conforming client; refuse it rather than guess.
  if (rest.includes('#')) return undefined;
  const q = rest.indexOf('?');
  const path = q >= 0 ? rest.slice(0, q) : rest;
  const query = q >= 0 ? rest.slice(q) : '';
  return authority === undefined ? { path, query } : { path, query, authority };
}
