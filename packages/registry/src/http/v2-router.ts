import { isValidName, OciError } from '@meridian/oci';
import type { Need } from './auth-gate';
import type { V2Handler } from './context';
import { apiBase } from '../routes/base';
import { deleteBlob, getBlob } from '../routes/blobs';
import {
  cancelUpload,
  finishUpload,
  patchUpload,
  startUpload,
  uploadStatus,
} from '../routes/blob-uploads';
import { listCatalog } from '../routes/catalog';
import { deleteManifest, getManifest, putManifest } from '../routes/manifests';
import { listReferrers } from '../routes/referrers';
import { listTags } from '../routes/tags';

/** What a method of a route needs: a registry-wide need, or actions on the named repository. */
export type V2Need =
  | { kind: 'token' }
  | { kind: 'catalog' }
  | { kind: 'repository'; actions: string[]; challenge: string };

interface MethodEntry {
  handler: V2Handler;
  /** Whether the method writes (pushes, deletes): refused by a read-only replica. */
  write: boolean;
  need: V2Need;
}

interface Route {
  /** Route template for logs and metrics (bounded label values). */
  name: string;
  pattern: RegExp;
  methods: Partial<Record<string, MethodEntry>>;
}

const PULL: V2Need = { kind: 'repository', actions: ['pull'], challenge: 'pull' };
const PUSH: V2Need = { kind: 'repository', actions: ['push'], challenge: 'pull,push' };
const DELETE: V2Need = { kind: 'repository', actions: ['delete'], challenge: 'delete' };
const read = (handler: V2Handler, need: V2Need = PULL): MethodEntry => ({
  handler,
  write: false,
  need,
});
const write = (handler: V2Handler, need: V2Need): MethodEntry => ({ handler, write: true, need });

/**
 * The distribution API's fixed route table: it dispatches and it says what each method needs,
 * so authorization is decided on the very match that dispatches. Names may have several path
 * components, so each pattern anchors on the resource segment that follows the name; uploads
 * come before blobs. Matching is on the path as sent and case-sensitive.
 */
export const V2_ROUTES: readonly Route[] = [
  {
    name: 'base',
    pattern: /^\/v2\/?$/,
    methods: { GET: read(apiBase, { kind: 'token' }), HEAD: read(apiBase, { kind: 'token' }) },
  },
  {
    name: 'catalog',
    pattern: /^\/v2\/_catalog$/,
    methods: { GET: read(listCatalog, { kind: 'catalog' }) },
  },
  {
    name: 'manifest',
    pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    methods: {
      GET: read(getManifest),
      HEAD: read(getManifest),
      PUT: write(putManifest, PUSH),
      DELETE: write(deleteManifest, DELETE),
    },
  },
  {
    // A session is started on the collection only; its Location names the session that every
    // later request goes to (a POST there would silently start another one).
    name: 'uploads',
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/$/,
    methods: { POST: write(startUpload, PUSH) },
  },
  {
    name: 'upload',
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    methods: {
      PATCH: write(patchUpload, PUSH),
      PUT: write(finishUpload, PUSH),
      GET: write(uploadStatus, PUSH),
      DELETE: write(cancelUpload, PUSH),
    },
  },
  {
    name: 'blob',
    pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
    methods: { GET: read(getBlob), HEAD: read(getBlob), DELETE: write(deleteBlob, DELETE) },
  },
  {
    name: 'tags',
    pattern: /^\/v2\/(.+)\/tags\/list$/,
    methods: {
      GET: read(listTags, {
        kind: 'repository',
        actions: ['pull', 'metadata_read'],
        challenge: 'pull',
      }),
    },
  },
  {
    name: 'referrers',
    pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/,
    methods: { GET: read(listReferrers) },
  },
];

export interface MatchedRoute {
  route: string;
  handler: V2Handler;
  write: boolean;
  /** What the gate checks: the route's declared need, on the matched repository. */
  need: Need;
  name: string;
  param: string;
  /** The route's methods that do not write: what a read-only replica still allows. */
  readMethods: string[];
}

/** Matches a `/v2` path. Throws the spec's errors for bad names and unsupported methods. */
export function matchV2(method: string, pathname: string): MatchedRoute {
  for (const r of V2_ROUTES) {
    const m = r.pattern.exec(pathname);
    if (!m) continue;
    const entry = r.methods[method];
    // RFC 9110 §15.5.6: a 405 names the methods the resource does accept (`Allow`).
    if (!entry)
      throw new OciError('UNSUPPORTED', `${method} is not supported on this endpoint`, {
        allow: Object.keys(r.methods).sort(),
      });
    // The name is taken as sent: the grammar has no character that needs encoding, so `%2F`,
    // `%2e%2e` or `%61` in a name is an invalid name, never another repository.
    const name = m[1] ?? '';
    if (m[1] !== undefined && !isValidName(name))
      throw new OciError('NAME_INVALID', `invalid repository name: ${name.slice(0, 300)}`, {
        name: name.slice(0, 300),
      });
    const need: Need =
      entry.need.kind === 'repository' ? { ...entry.need, name } : { kind: entry.need.kind };
    return {
      route: r.name,
      handler: entry.handler,
      write: entry.write,
      need,
      name,
      param: decode(m[2] ?? ''),
      readMethods: Object.entries(r.methods)
        .filter(([, e]) => e && !e.write)
        .map(([m]) => m)
        .sort(),
    };
  }
  throw new OciError('NAME_UNKNOWN', 'unknown API endpoint', undefined, 404);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new OciError('NAME_INVALID', 'malformed percent-encoding in the path');
  }
}
