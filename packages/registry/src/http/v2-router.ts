import { isValidName, OciError } from '@meridian/oci';
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

interface Route {
  /** Route template for logs and metrics (bounded label values). */
  name: string;
  pattern: RegExp;
  /** Whether the route needs write access (pushes, deletes). */
  methods: Partial<Record<string, { handler: V2Handler; write: boolean }>>;
}

const read = (handler: V2Handler) => ({ handler, write: false });
const write = (handler: V2Handler) => ({ handler, write: true });

/**
 * The distribution API's fixed route table. Names may have several path components, so each
 * pattern anchors on the resource segment that follows the name; uploads come before blobs.
 */
const ROUTES: Route[] = [
  { name: 'base', pattern: /^\/v2\/?$/, methods: { GET: read(apiBase), HEAD: read(apiBase) } },
  { name: 'catalog', pattern: /^\/v2\/_catalog$/, methods: { GET: read(listCatalog) } },
  {
    name: 'manifest',
    pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    methods: {
      GET: read(getManifest),
      HEAD: read(getManifest),
      PUT: write(putManifest),
      DELETE: write(deleteManifest),
    },
  },
  {
    name: 'upload',
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/,
    methods: {
      POST: write(startUpload),
      PATCH: write(patchUpload),
      PUT: write(finishUpload),
      GET: write(uploadStatus),
      DELETE: write(cancelUpload),
    },
  },
  {
    name: 'blob',
    pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
    methods: { GET: read(getBlob), HEAD: read(getBlob), DELETE: write(deleteBlob) },
  },
  { name: 'tags', pattern: /^\/v2\/(.+)\/tags\/list$/, methods: { GET: read(listTags) } },
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
  name: string;
  param: string;
}

/** Matches a `/v2` path. Throws the spec's errors for bad names and unsupported methods. */
export function matchV2(method: string, pathname: string): MatchedRoute {
  for (const r of ROUTES) {
    const m = r.pattern.exec(pathname);
    if (!m) continue;
    const entry = r.methods[method];
    if (!entry) throw new OciError('UNSUPPORTED', `${method} is not supported on this endpoint`);
    const name = m[1] === undefined ? '' : decode(m[1]);
    if (m[1] !== undefined && !isValidName(name))
      throw new OciError('NAME_INVALID', `invalid repository name: ${name.slice(0, 300)}`, {
        name: name.slice(0, 300),
      });
    return {
      route: r.name,
      handler: entry.handler,
      write: entry.write,
      name,
      param: decode(m[2] ?? ''),
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
