import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TargetGuard } from './target-guard';

/** What one delivery attempt saw (kept in the history; bodies truncated). */
export interface SendResult {
  /** The receiver's status; absent when no response came (network error, timeout, refused). */
  status?: number;
  headers: Record<string, string>;
  /** The first `EXCERPT` bytes of the response body. */
  body: string;
  durationMs: number;
  error?: string;
  /** The target is in a range the guard refuses (permanent until the webhook changes). */
  refused?: boolean;
  /** From a `Retry-After` header (seconds or an HTTP date), in ms. */
  retryAfterMs?: number;
}

export const EXCERPT = 4096;

/**
 * One POST of `body` to `url`: no redirects followed (a 3xx is an answer like any other), the
 * target checked by `guard` at connect time (every resolved address), the response body read up
 * to `EXCERPT` bytes, the whole exchange bounded by `timeoutMs`.
 */
export function send(
  url: string,
  opts: { headers: Record<string, string>; body: string; timeoutMs: number; guard: TargetGuard },
): Promise<SendResult> {
  const started = process.hrtime.bigint();
  const ms = () => Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10;
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
      opts.guard.checkLiteral(u);
    } catch (err) {
      resolve({
        headers: {},
        body: '',
        durationMs: 0,
        error: (err as Error).message,
        refused: true,
      });
      return;
    }
    const payload = Buffer.from(opts.body);
    const fn = u.protocol === 'https:' ? httpsRequest : httpRequest;
    let done = false;
    const finish = (r: Omit<SendResult, 'durationMs'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...r, durationMs: ms() });
    };
    const req = fn(
      u,
      {
        method: 'POST',
        headers: { ...opts.headers, 'content-length': String(payload.length) },
        lookup: opts.guard.lookup,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < EXCERPT) chunks.push(c.subarray(0, EXCERPT - size));
          size += c.length;
          if (size >= EXCERPT) res.destroy();
        });
        const end = (): void => {
          finish({
            status: res.statusCode,
            headers: flatten(res.headers),
            body: Buffer.concat(chunks).toString('utf8'),
            retryAfterMs: retryAfter(res.headers['retry-after']),
          });
        };
        res.once('end', end);
        res.once('close', end);
        res.once('error', end);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    req.once('error', (err: Error & { code?: string }) => {
      finish({
        headers: {},
        body: '',
        error: err.message,
        refused: err.code === 'ETARGETREFUSED',
      });
    });
    req.end(payload);
  });
}

function flatten(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** `Retry-After` in ms (at most one day), or undefined. */
export function retryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = /^\d+$/.test(v.trim()) ? Number(v) * 1000 : Date.parse(v) - now;
  return Number.isFinite(s) ? Math.min(Math.max(0, s), 86_400_000) : undefined;
}
