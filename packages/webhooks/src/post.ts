import type { Webhook } from './definition';
import type { Attempt } from './history';
import { send, type SendResult } from './http-send';
import { signatureHeaders } from './signature';
import type { TargetGuard } from './target-guard';

export const USER_AGENT = 'Meridian-Webhooks/1';

/** One signed POST of a delivery's body to the webhook's URL. */
export async function postDelivery(
  hook: Webhook,
  id: string,
  contentType: string,
  body: string,
  opts: { guard: TargetGuard; timeoutMs?: number },
): Promise<{ result: SendResult; sentHeaders: Record<string, string> }> {
  const sentHeaders = {
    'content-type': contentType,
    'user-agent': USER_AGENT,
    ...hook.headers,
    ...signatureHeaders(
      id,
      body,
      hook.secrets.map((s) => s.value),
    ),
  };
  const result = await send(hook.url, {
    headers: sentHeaders,
    body,
    timeoutMs: opts.timeoutMs ?? 10_000,
    guard: opts.guard,
  });
  return { result, sentHeaders };
}

/** The attempt as the history keeps it: custom header values masked. */
export function attemptOf(r: SendResult, sent: Record<string, string>, hook: Webhook): Attempt {
  const custom = new Set(Object.keys(hook.headers).map((k) => k.toLowerCase()));
  return {
    at: new Date().toISOString(),
    ...(r.status !== undefined && { status: r.status }),
    ...(r.error !== undefined && { error: r.error }),
    durationMs: r.durationMs,
    requestHeaders: Object.fromEntries(
      Object.entries(sent).map(([k, v]) => {
        const name = k.toLowerCase();
        return [name, custom.has(name) ? '***' : v];
      }),
    ),
    responseHeaders: r.headers,
    responseBody: r.body,
  };
}
