import { createHmac } from 'node:crypto';
import { signatureHeaders, verifySignature } from './signature';

describe('Standard Webhooks signatures', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const body = '{"id":"x"}';

  it('is HMAC-SHA256 of id.timestamp.body with the decoded secret, base64', () => {
    const h = signatureHeaders('msg_1', body, [secret], 1_700_000_000_000);
    expect(h['webhook-id']).toBe('msg_1');
    expect(h['webhook-timestamp']).toBe('1700000000');
    const want = createHmac('sha256', Buffer.from(secret.slice(6), 'base64'))
      .update(`msg_1.1700000000.${body}`)
      .digest('base64');
    expect(h['webhook-signature']).toBe(`v1,${want}`);
  });

  it('verifies with either secret during a rotation; refuses a changed body or old timestamp', () => {
    const old = 'whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA==';
    const now = Date.now();
    const h = signatureHeaders('msg_2', body, [secret, old], now);
    const parts = {
      id: h['webhook-id']!,
      timestamp: h['webhook-timestamp']!,
      signature: h['webhook-signature']!,
    };
    expect(parts.signature.split(' ')).toHaveLength(2);
    expect(verifySignature(secret, parts, body, 300, now)).toBe(true);
    expect(verifySignature(old, parts, body, 300, now)).toBe(true);
    expect(
      verifySignature('whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==', parts, body, 300, now),
    ).toBe(false);
    expect(verifySignature(secret, parts, `${body} `, 300, now)).toBe(false);
    expect(verifySignature(secret, parts, body, 300, now + 301_000)).toBe(false);
  });
});
