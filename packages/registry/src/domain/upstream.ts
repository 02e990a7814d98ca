import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { MANIFEST_MEDIA_TYPES, OciError } from '@meridian/oci';

/**
 * The `User-Agent` of a replica's requests to the primary. With auth off it is how the primary
 * tells a replica's fallback read from a client's pull (the replica counts that pull itself);
 * with auth on the replica's node token says so and the header is not trusted.
 */
export const REPLICA_USER_AGENT = 'meridian-replica';

/** A manifest fetched from the primary. */
export interface UpstreamManifest {
  digest: string;
  mediaType: string;
  size: number;
  bytes: Buffer;
}

/**
 * Default for `PrimaryUpstream`'s `timeoutMs`: below the gateway's `upstreamTimeoutMs` (5 s), so
 * a replica waiting on a hung primary answers (its own copy of a behind tag, or a 503) before the
 * gateway gives up on the replica — else the client gets a 503 although its region could serve.
 */
export const DEFAULT_PRIMARY_TIMEOUT_MS = 3000;

/** After the primary did not answer in time, it is not asked again for this long (ms). */
const SILENT_FOR_MS = 5000;

/**
 * The primary region's distribution API, as a replica reads it on a miss. Network failures are
 * `UNAVAILABLE`; the primary's 404s come back as the matching OCI error.
 */
export class PrimaryUpstream {
  private readonly timeoutMs: number;
  /** Until when the primary is taken as hung (it let a request time out): fail at once. */
  private silentUntil = 0;
  private readonly delayMs: number;
  private readonly authorization?: (repository: string) => Promise<string>;

  /**
   * @param opts.timeoutMs per request (a blob's body excepted: only its head), default 3 s; a
   *   request that times out makes the next ones fail at once for 5 s (the primary hangs)
   * @param opts.delayMs simulated one-way latency added to each request (dev), default 0
   * @param opts.authorization the `Authorization` header for a repository's requests (a replica
   *   presents a token it signs itself when auth is on), default none
   */
  constructor(
    readonly baseUrl: string,
    opts: {
      timeoutMs?: number;
      delayMs?: number;
      authorization?: (repository: string) => Promise<string>;
    } = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_PRIMARY_TIMEOUT_MS;
    this.delayMs = opts.delayMs ?? 0;
    this.authorization = opts.authorization;
  }

  async manifest(repository: string, reference: string): Promise<UpstreamManifest | undefined> {
    const res = await this.request(repository, `/v2/${repository}/manifests/${reference}`, {
      headers: { Accept: MANIFEST_MEDIA_TYPES.join(', ') },
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status === 403) throw await lockedAtPrimary(res);
    if (!res.ok) {
      await res.body?.cancel();
      throw new OciError('UNAVAILABLE', `primary answered ${res.status} for a manifest`);
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    return {
      digest: res.headers.get('docker-content-digest') ?? '',
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!.trim(),
      size: bytes.length,
      bytes,
    };
  }

  async blobSize(repository: string, digest: string): Promise<number | undefined> {
    const res = await this.request(repository, `/v2/${repository}/blobs/${digest}`, {
      method: 'HEAD',
    });
    if (res.status === 404) return undefined;
    if (res.status === 403) throw await lockedAtPrimary(res);
    if (!res.ok) throw new OciError('UNAVAILABLE', `primary answered ${res.status} for a blob`);
    return Number(res.headers.get('content-length'));
  }

  /**
   * A blob's bytes (or one range of them) from the primary. The response must start within
   * `timeoutMs`; the body has no deadline — the caller watches it for stalls (`BlobFill`,
   * `upstreamStream`).
   */
  async blob(
    repository: string,
    digest: string,
    range?: { start: number; end?: number },
  ): Promise<{ body: Readable; size: number; length: number } | undefined> {
    const headers: Record<string, string> = {};
    if (range) headers.Range = `bytes=${range.start}-${range.end ?? ''}`;
    const res = await this.request(
      repository,
      `/v2/${repository}/blobs/${digest}`,
      { headers },
      false,
    );
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status === 403) throw await lockedAtPrimary(res);
    const expected = range ? 206 : 200;
    const length = Number(res.headers.get('content-length'));
    const size = range
      ? Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1])
      : length;
    if (
      res.status !== expected ||
      !res.body ||
      !Number.isSafeInteger(length) ||
      !Number.isSafeInteger(size)
    ) {
      await res.body?.cancel();
      throw new OciError('UNAVAILABLE', `primary answered ${res.status} for a blob`);
    }
    return {
      body: Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      size,
      length,
    };
  }

  /**
   * One request. `wholeTimeout`: the deadline covers the body too (small responses); otherwise
   * only the response head must arrive in time, and the body is left to the caller.
   */
  private async request(
    repository: string,
    path: string,
    init: RequestInit,
    wholeTimeout = true,
  ): Promise<Response> {
    if (Date.now() < this.silentUntil)
      throw new OciError(
        'UNAVAILABLE',
        `primary region unreachable: no answer within ${this.timeoutMs} ms; asking again shortly`,
      );
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const headers = new Headers(init.headers);
    headers.set('User-Agent', REPLICA_USER_AGENT);
    if (this.authorization) headers.set('Authorization', await this.authorization(repository));
    const abort = new AbortController();
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled) this.silentUntil = Date.now() + SILENT_FOR_MS;
      abort.abort(new Error(`no answer within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    timer.unref();
    try {
      return await fetch(`${this.baseUrl}${path}`, {
        ...init,
        headers,
        redirect: 'follow',
        signal: abort.signal,
      });
    } catch (err) {
      throw new OciError('UNAVAILABLE', `primary region unreachable: ${(err as Error).message}`);
    } finally {
      settled = true;
      if (!wholeTimeout) clearTimeout(timer);
    }
  }
}

/**
 * The primary refused a read: a lock (ADR 0015) the region has not copied yet, or the node's
 * own access. Either way the client is told `DENIED` with the primary's reason, rather than a
 * 503 or a stale copy from the region.
 */
async function lockedAtPrimary(res: Response): Promise<OciError> {
  let message = 'the primary denied the read';
  try {
    const body = (await res.json()) as { errors?: { message?: unknown }[] };
    const m = body.errors?.[0]?.message;
    if (typeof m === 'string') message = m.slice(0, 300);
  } catch {
    // a HEAD, or not the OCI error JSON
  }
  return new OciError('DENIED', message);
}
