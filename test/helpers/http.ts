/**
 * A tiny raw-HTTP client for registry tests, on `node:http` rather than `fetch` so a test controls
 * exactly what goes on the wire: bodies on GET, exact `Content-Length`, paths that are not
 * normalised (`..`), and a request it can abort halfway.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { ImageBlob, Manifest } from './images';
import { noteSecretsIn } from './log-scan';

export interface HttpResponse {
  method: string;
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** A single header value (the first when repeated). */
  header(name: string): string | undefined;
  json<T = unknown>(): T;
}

export interface RequestOptions {
  headers?: Record<string, string | number | string[]>;
  body?: Buffer | string;
  /** Query parameters appended to the path (repeatable with arrays). */
  query?: Record<string, string | string[] | undefined>;
}

/** The spec's error body. */
export interface OciErrorBody {
  errors: { code: string; message?: string; detail?: unknown }[];
}

/** The only codes the spec allows in a 4xx JSON error body (distribution-spec, "Error Codes"). */
export const SPEC_ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
];

export class RegistryClient {
  constructor(readonly baseUrl: string) {}

  /** Sends one request. `path` may be absolute (`http://...`) or relative to the base URL. */
  request(method: string, path: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    const url = new URL(path, this.baseUrl + '/');
    // Keep the path exactly as given (URL would resolve `..`).
    const rawPath = /^https?:\/\//.test(path) ? url.pathname + url.search : path;
    let target = rawPath;
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) {
        target += `${target.includes('?') ? '&' : '?'}${encodeURIComponent(k)}=${encodeURIComponent(one)}`;
      }
    }
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
    const headers: Record<string, string | number | string[]> = { ...opts.headers };
    const hasLength = Object.keys(headers).some((h) => h.toLowerCase() === 'content-length');
    if (!hasLength && (body !== undefined || ['POST', 'PUT', 'PATCH'].includes(method))) {
      headers['Content-Length'] = body?.length ?? 0;
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, method, path: target, headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const buf = Buffer.concat(chunks);
            if (!target.startsWith('/v2') && /json/.test(String(res.headers['content-type'])))
              noteSecretsInJson(buf);
            resolve({
              method,
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: buf,
              header: (name) => {
                const v = res.headers[name.toLowerCase()];
                return Array.isArray(v) ? v[0] : v;
              },
              json: <T>() => JSON.parse(buf.toString('utf8')) as T,
            });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  get(path: string, opts?: RequestOptions) {
    return this.request('GET', path, opts);
  }
  head(path: string, opts?: RequestOptions) {
    return this.request('HEAD', path, opts);
  }
  put(path: string, opts?: RequestOptions) {
    return this.request('PUT', path, opts);
  }
  post(path: string, opts?: RequestOptions) {
    return this.request('POST', path, opts);
  }
  patch(path: string, opts?: RequestOptions) {
    return this.request('PATCH', path, opts);
  }
  delete(path: string, opts?: RequestOptions) {
    return this.request('DELETE', path, opts);
  }

  /** Starts an upload session; returns the response (202 with a Location). */
  startUpload(repo: string, opts?: RequestOptions) {
    return this.post(`/v2/${repo}/blobs/uploads/`, opts);
  }

  /** POST then PUT with the whole blob: the common monolithic upload. Returns the PUT response. */
  async uploadBlob(repo: string, blob: Pick<ImageBlob, 'bytes' | 'digest'>): Promise<HttpResponse> {
    const post = await this.startUpload(repo);
    if (post.status !== 202) throw new Error(`POST upload: ${post.status} ${post.body.toString()}`);
    return this.put(location(post), {
      query: { digest: blob.digest },
      headers: { 'Content-Type': 'application/octet-stream' },
      body: blob.bytes,
    });
  }

  /** PUT a manifest under a tag or digest with its own media type as Content-Type. */
  putManifest(repo: string, reference: string, m: Pick<Manifest, 'bytes' | 'mediaType'>) {
    return this.put(`/v2/${repo}/manifests/${reference}`, {
      headers: { 'Content-Type': m.mediaType },
      body: m.bytes,
    });
  }

  /** Pushes every blob then the manifest; throws on any failure (test setup). */
  async pushImage(repo: string, reference: string, blobs: ImageBlob[], m: Manifest): Promise<void> {
    for (const b of blobs) {
      const r = await this.uploadBlob(repo, b);
      if (r.status !== 201) throw new Error(`blob ${b.digest}: ${r.status} ${r.body.toString()}`);
    }
    const r = await this.putManifest(repo, reference, m);
    if (r.status !== 201)
      throw new Error(`manifest ${reference}: ${r.status} ${r.body.toString()}`);
  }
}

/** The Location header (relative or absolute), failing loudly when it is missing. */
export function location(res: HttpResponse): string {
  const loc = res.header('location');
  if (!loc) throw new Error(`response ${res.status} has no Location header`);
  return loc;
}

/** Parses the spec's error body; throws when the body is not one. */
export function ociErrors(res: HttpResponse): OciErrorBody['errors'] {
  const body = res.json<OciErrorBody>();
  if (!Array.isArray(body.errors) || body.errors.length === 0)
    throw new Error(`not an OCI error body: ${res.body.toString()}`);
  return body.errors;
}

/**
 * Asserts the status and that the body is the spec's JSON error with `code` first (a HEAD
 * response has no body, so only its status and Content-Type are checked).
 */
export function expectOciError(res: HttpResponse, status: number, code: string): void {
  if (res.method === 'HEAD' && res.status === status) {
    expect(res.body.length).toBe(0);
    expect(res.header('content-type')).toMatch(/^application\/json/);
    return;
  }
  if (res.status !== status || res.body.length === 0) {
    throw new Error(
      `expected ${status} ${code}, got ${res.status}: ${res.body.toString().slice(0, 300)}`,
    );
  }
  expect(res.header('content-type')).toMatch(/^application\/json/);
  const errors = ociErrors(res);
  expect(errors[0]!.code).toBe(code);
  for (const e of errors) {
    expect(SPEC_ERROR_CODES).toContain(e.code);
    expect(typeof e.message).toBe('string');
  }
}

/** Passwords and tokens an admin or token response handed out, for the log scan. */
function noteSecretsInJson(buf: Buffer): void {
  try {
    noteSecretsIn(JSON.parse(buf.toString('utf8')));
  } catch {
    // not JSON after all: nothing to note
  }
}
