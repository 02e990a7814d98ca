import { createHmac, timingSafeEqual } from 'node:crypto';
import { secretKey } from './definition';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): HMAC-SHA256 over
 * `<webhook-id>.<webhook-timestamp>.<body>` with each of the webhook's secrets, sent as
 * `webhook-signature: v1,<base64> [v1,<base64>]` — two while a rotated-out secret is kept.
 */
export function signatureHeaders(
  id: string,
  body: string,
  secrets: readonly string[],
  now = Date.now(),
): Record<string, string> {
  const timestamp = String(Math.floor(now / 1000));
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': secrets.map((s) => `v1,${sign(s, id, timestamp, body)}`).join(' '),
  };
}

export function sign(secret: string, id: string, timestamp: string, body: string): string {
  return createHmac('sha256', secretKey(secret))
    .update(`${id}.${timestamp}.${body}`)
    .digest('base64');
}

/**
 * What a receiver does: true when one of the signatures in `header` was made with `secret`
 * over this id, timestamp and body, and the timestamp is within `toleranceSeconds` of now.
 */
export function verifySignature(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  toleranceSeconds = 300,
  now = Date.now(),
): boolean {
  const ts = Number(headers.timestamp);
  if (!Number.isFinite(ts) || Math.abs(now / 1000 - ts) > toleranceSeconds) return false;
  const want = Buffer.from(sign(secret, headers.id, headers.timestamp, body));
  return headers.signature.split(' ').some((part) => {
    const [version, sig] = part.split(',');
    if (version !== 'v1' || sig === undefined) return false;
    const got = Buffer.from(sig);
    return got.length === want.length && timingSafeEqual(got, want);
  });
}
