import type { Readable } from 'node:stream';
import { parse as parseAuthHeader } from 'auth-header';
import type { Dispatcher, RequestInit, Response } from 'undici';
import {
  digestOf,
  isDigestLike,
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  parseDigest,
  type Descriptor,
} from '@meridian/oci';
import { UpstreamError } from './upstream-error';
import { undici } from './undici-lazy';
import { defaultUpstreamGuard, type UpstreamGuard } from './upstream-guard';

/** A username and password for a registry (from a credential set or the command line). */
export interface UpstreamCredentials {
  username: string;
  password: string;
}

export interface RemoteRegistryOptions {
  /** `https://registry-1.docker.io`, `http://127.0.0.1:5000`. */
  baseUrl: string;
  credentials?: UpstreamCredentials;
  /**
   * How errors name the credentials: `credential set "hub"`, `the given username`. Default
   * `anonymous access` without credentials, `the given credentials` with them.
   */
  credentialName?: string;
  /** Per request, until the response head (a blob's body has no deadline). Default 30 s. */
  timeoutMs?: number;
  /** Which addresses may be connected to (every hop, the token realm too). Default: the default guard. */
  guard?: UpstreamGuard;
}

/** A manifest read from another registry, digest-verified. */
export interface RemoteManifest {
  digest: string;
  mediaType: string;
  size: number;
  bytes: Buffer;
}

const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';
const ACCEPT = [...MANIFEST_MEDIA_TYPES, INDEX_TYPE].filter((v, i, a) => a.indexOf(v) === i);

/**
 * Another registry's distribution API, as an import or a cache rule reads it. Speaks the
 * Docker/OCI token flow (a `401` with `WWW-Authenticate: Bearer realm,service,scope` → a token
 * from the realm, anonymously or with Basic credentials) and plain Basic. Tokens are kept per
 * scope until they expire. Credentials are never logged and never put in an error message;
 * errors name them by `credentialName`.
 */
export class RemoteRegistry {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly guard: UpstreamGuard;
  private readonly tokens = new Map<string, { header: string; expires: number }>();
  /** Set once the registry asked for Basic: sent with every request from then on. */
  private basic = false;
  /** Whether the registry serves the referrers API: unknown until it answered once. */
  private referrersApi: boolean | undefined;

  constructor(private readonly opts: RemoteRegistryOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.guard = opts.guard ?? defaultUpstreamGuard();
  }

  /** Where this registry is, for messages: `127.0.0.1:5000`. */
  get host(): string {
    return new URL(this.baseUrl).host;
  }

  /** A manifest by tag or digest; undefined when the registry does not have it. */
  async manifest(repository: string, reference: string): Promise<RemoteManifest | undefined> {
    const res = await this.request(repository, `/v2/${repository}/manifests/${reference}`, {
      headers: { Accept: ACCEPT.join(', ') },
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) throw await this.failed(res, `manifest ${repository}:${reference}`);
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
      await res.body?.cancel();
      throw new UpstreamError('invalid', `${this.host} sent a manifest over 4 MiB`);
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const sent = res.headers.get('docker-content-digest');
    const expected = isDigestLike(reference) ? reference : sent;
    const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (expected && expected !== digest)
      throw new UpstreamError(
        'invalid',
        `${this.host} sent a manifest for ${repository}:${reference.slice(0, 80)} that does not match its digest`,
      );
    return { digest, mediaType, size: bytes.length, bytes };
  }

  /** A tag's (or digest's) current digest with a `HEAD`, which Docker Hub does not count as a pull. */
  async headManifest(
    repository: string,
    reference: string,
  ): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    const res = await this.request(repository, `/v2/${repository}/manifests/${reference}`, {
      method: 'HEAD',
      headers: { Accept: ACCEPT.join(', ') },
    });
    if (res.status === 404) return undefined;
    if (!res.ok) throw await this.failed(res, `manifest ${repository}:${reference}`);
    const digest = res.headers.get('docker-content-digest');
    if (!digest) return undefined; // the caller GETs it instead
    return {
      digest,
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!.trim(),
      size: Number(res.headers.get('content-length') ?? 0),
    };
  }

  /**
   * A blob's bytes as a stream (the caller verifies the digest); undefined when unknown. Read
   * with undici's `request`, whose body is a Node stream: a `fetch` body goes through a web
   * stream first, which on this path cost more CPU than the fill's hashing (issue 15's cold pull).
   * Redirects (a blob sent on to object storage) are followed, each hop through the guard, and
   * the `Authorization` header is not sent to another origin.
   */
  async blob(
    repository: string,
    digest: string,
  ): Promise<{ body: Readable; size: number } | undefined> {
    const path = `/v2/${repository}/blobs/${digest}`;
    const res = await this.authorized(
      repository,
      (authorization) => this.sendBlob(path, authorization),
      (r) => ({
        status: r.statusCode,
        challenge: headerOf(r.headers, 'www-authenticate'),
        discard: () => r.body.dump().catch(() => {}),
      }),
    );
    if (res.statusCode === 404) {
      await res.body.dump().catch(() => {});
      return undefined;
    }
    const size = Number(headerOf(res.headers, 'content-length'));
    if (res.statusCode !== 200 || !Number.isSafeInteger(size)) {
      await res.body.dump().catch(() => {});
      if (res.statusCode < 200 || res.statusCode > 299)
        throw this.failedWith(
          res.statusCode,
          headerOf(res.headers, 'retry-after'),
          `blob ${digest}`,
        );
      throw new UpstreamError('unavailable', `${this.host} sent blob ${digest} without a length`);
    }
    return { body: res.body, size };
  }

  private async sendBlob(path: string, authorization: string | undefined) {
    const headers: Record<string, string> = { 'user-agent': 'meridian' };
    if (authorization) headers.authorization = authorization;
    try {
      return await undici().request(`${this.baseUrl}${path}`, {
        method: 'GET',
        headers,
        headersTimeout: this.timeoutMs,
        dispatcher: this.guard.redirecting,
      });
    } catch (err) {
      throw this.unreachable(err);
    }
  }

  /**
   * What refers to `digest` (signatures, SBOMs): the referrers API, else the tag schema
   * (`sha256-<hex>`) registries without it use.
   */
  async referrers(repository: string, digest: string): Promise<Descriptor[]> {
    if (this.referrersApi !== false) {
      const res = await this.request(repository, `/v2/${repository}/referrers/${digest}`, {
        headers: { Accept: INDEX_TYPE },
      });
      if (res.ok && (res.headers.get('content-type') ?? '').startsWith(INDEX_TYPE)) {
        this.referrersApi = true;
        const body = (await res.json()) as { manifests?: Descriptor[] };
        return Array.isArray(body.manifests) ? body.manifests : [];
      }
      await res.body?.cancel();
      if (res.status !== 404 && res.status !== 405 && !res.ok)
        throw await this.failed(res, `referrers of ${digest}`);
      // A registry without the API answers so for every digest (an unknown route, or 200 with
      // something else): ask the tag schema directly from now on. One with it never 404s a digest.
      if (this.referrersApi === undefined) this.referrersApi = false;
    }
    const d = parseDigest(digest);
    const index = await this.manifest(repository, `${d.algorithm}-${d.hex}`);
    if (!index) return [];
    const parsed = JSON.parse(index.bytes.toString('utf8')) as { manifests?: Descriptor[] };
    return Array.isArray(parsed.manifests) ? parsed.manifests : [];
  }

  /**
   * One request with whatever authorization this registry asked for. `wholeTimeout`: the
   * deadline covers the body (small responses); otherwise only the head.
   */
  private async request(
    repository: string,
    path: string,
    init: RequestInit,
    wholeTimeout = true,
  ): Promise<Response> {
    return this.authorized(
      repository,
      (authorization) => this.send(path, init, authorization, wholeTimeout),
      (r) => ({
        status: r.status,
        challenge: r.headers.get('www-authenticate') ?? undefined,
        discard: () => r.body?.cancel().catch(() => {}) ?? Promise.resolve(),
      }),
    );
  }

  /**
   * One request (`send`) with whatever authorization this registry asked for: a `401`'s
   * challenge is answered (a token, or Basic) and the request sent once more; a second `401` is
   * the credentials' refusal. The one place both the `fetch` and the blob requests authorize.
   */
  private async authorized<R>(
    repository: string,
    send: (authorization: string | undefined) => Promise<R>,
    view: (r: R) => { status: number; challenge: string | undefined; discard(): Promise<void> },
  ): Promise<R> {
    const scope = `repository:${repository}:pull`;
    const first = await send(this.authorization(scope));
    const v = view(first);
    if (v.status !== 401) return first;
    await v.discard();
    const again = await send(await this.answer(v.challenge ?? '', scope));
    const w = view(again);
    if (w.status === 401) {
      await w.discard();
      throw this.refused();
    }
    return again;
  }

  private authorization(scope: string): string | undefined {
    const t = this.tokens.get(scope);
    if (t && t.expires > Date.now()) return t.header;
    if (this.basic && this.opts.credentials) return this.basicHeader();
    return undefined;
  }

  /** The `Authorization` header that answers a `401`'s challenge. */
  private async answer(challenge: string, scope: string): Promise<string> {
    let parsed;
    try {
      parsed = parseAuthHeader(challenge);
    } catch {
      throw this.refused();
    }
    const scheme = parsed.scheme.toLowerCase();
    if (scheme === 'basic') {
      if (!this.opts.credentials) throw this.refused();
      this.basic = true;
      return this.basicHeader();
    }
    if (scheme !== 'bearer') throw this.refused();
    const p = (k: string) => {
      const v = parsed.params[k];
      return Array.isArray(v) ? v[0] : v;
    };
    const realm = p('realm');
    if (!realm) throw this.refused();
    const url = new URL(realm, this.baseUrl);
    const service = p('service');
    if (service) url.searchParams.set('service', service);
    url.searchParams.set('scope', p('scope') ?? scope);
    const headers: Record<string, string> = {};
    if (this.opts.credentials) headers.Authorization = this.basicHeader();
    const res = await this.send(`${url.pathname}${url.search}`, { headers }, undefined, true, url);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.refused();
    }
    if (!res.ok) throw await this.failed(res, 'a token');
    const body = (await res.json()) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
    };
    const token = body.token ?? body.access_token;
    if (!token)
      throw new UpstreamError('unavailable', `${this.host}'s token service sent no token`);
    const ttl = Math.max(10, Math.min(body.expires_in ?? 60, 3600)) * 1000;
    const header = `Bearer ${token}`;
    this.tokens.set(scope, { header, expires: Date.now() + ttl - 5000 });
    return header;
  }

  private basicHeader(): string {
    const c = this.opts.credentials!;
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
  }

  private refused(): UpstreamError {
    const who =
      this.opts.credentialName ??
      (this.opts.credentials ? 'the given credentials' : 'anonymous access');
    return new UpstreamError('auth', `${this.host} refused ${who}`);
  }

  private async failed(res: Response, what: string): Promise<UpstreamError> {
    await res.body?.cancel().catch(() => {});
    return this.failedWith(res.status, res.headers.get('retry-after'), what);
  }

  private failedWith(status: number, retryAfter: string | null | undefined, what: string) {
    if (status === 429) {
      const after = Number(retryAfter);
      return new UpstreamError(
        'rate-limited',
        `${this.host} answered 429 (too many requests) for ${what}`,
        retryAfter && Number.isFinite(after) ? after : undefined,
      );
    }
    if (status === 403) return new UpstreamError('auth', `${this.host} denied ${what}`);
    if (status >= 500)
      return new UpstreamError('unavailable', `${this.host} answered ${status} for ${what}`);
    return new UpstreamError('invalid', `${this.host} answered ${status} for ${what}`);
  }

  /** A request that got no answer: refused by the guard, or the network. */
  private unreachable(err: unknown): UpstreamError {
    const refused = refusalOf(err);
    if (refused)
      return new UpstreamError(
        'refused',
        `${this.host}: connection refused by the upstream address guard: ${refused} (an operator can allow it with upstream.allowAddresses)`,
      );
    return new UpstreamError(
      'unavailable',
      `${this.host} unreachable: ${(err as Error).message.slice(0, 200)}`,
    );
  }

  private async send(
    path: string,
    init: RequestInit,
    authorization: string | undefined,
    wholeTimeout: boolean,
    absolute?: URL,
  ): Promise<Response> {
    const headers = new (undici().Headers)(init.headers);
    if (authorization) headers.set('Authorization', authorization);
    headers.set('User-Agent', 'meridian');
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new Error(`no answer within ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    timer.unref();
    try {
      return await undici().fetch(absolute ?? `${this.baseUrl}${path}`, {
        ...init,
        headers,
        redirect: 'follow',
        signal: abort.signal,
        dispatcher: this.guard.dispatcher,
      });
    } catch (err) {
      throw this.unreachable(err);
    } finally {
      if (!wholeTimeout) clearTimeout(timer);
    }
  }
}

/** The guard's reason when `err` (a fetch failure) is its refusal, at any hop. */
function refusalOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++)
    if ((e as Error & { code?: string }).code === 'ETARGETREFUSED') return e.message;
  return undefined;
}

/** One header of an undici `request` answer (a repeated header: its first value). */
function headerOf(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
