import { OciError } from '@meridian/oci';
import { applyInput, createWebhook, masked, secretKey } from './definition';

const regions = ['eastus', 'westeurope'];

describe('webhook definitions', () => {
  it('creates with ACR-like defaults and a generated Standard Webhooks secret', () => {
    const w = createWebhook({ name: 'ci', url: 'https://hooks.example.com/p?token=abc' }, regions);
    expect(w).toMatchObject({
      name: 'ci',
      actions: ['push'],
      scope: '',
      status: 'enabled',
      location: 'global',
      format: 'acr',
    });
    expect(w.secrets[0]!.value).toMatch(/^whsec_/);
    expect(secretKey(w.secrets[0]!.value)).toHaveLength(24);
  });

  it('masks the URL path and query, header values and secrets on read', () => {
    const w = createWebhook(
      {
        name: 'ci',
        url: 'https://hooks.example.com/secret-path?token=abc',
        headers: { Authorization: 'Bearer xyz' },
      },
      regions,
    );
    const shown = JSON.stringify(masked(w));
    expect(shown).not.toMatch(/secret-path|token=abc|Bearer xyz|whsec_/);
    expect(masked(w)).toMatchObject({
      url: 'https://hooks.example.com/***',
      headers: { Authorization: '***' },
    });
  });

  it('refuses bad input with a message naming the field', () => {
    const bad = (input: Record<string, unknown>, re: RegExp) => {
      let err: unknown;
      try {
        createWebhook({ name: 'ok', url: 'https://h.example/x', ...input }, regions);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OciError);
      expect((err as OciError).status).toBe(400);
      expect((err as Error).message).toMatch(re);
    };
    bad({ name: 'no spaces' }, /name/);
    bad({ url: 'ftp://h.example/' }, /url/);
    bad({ url: 'https://u:p@h.example/' }, /credentials/);
    bad({ actions: ['push', 'explode'] }, /actions/);
    bad({ actions: [] }, /actions/);
    bad({ scope: 'BAD:x' }, /scope/);
    bad({ location: 'mars' }, /location/);
    bad({ format: 'xml' }, /format/);
    bad({ regions: ['mars'] }, /regions/);
    bad({ headers: { 'webhook-signature': 'x' } }, /set by Meridian/);
    bad({ headers: { 'X-A': 'a\r\nInjected: 1' } }, /one line/);
    bad({ secret: 'short' }, /secret/);
  });

  it('update changes only the given fields; rotation keeps the old secret second', () => {
    const w = createWebhook({ name: 'ci', url: 'https://h.example/a' }, regions);
    const u = applyInput(w, { status: 'disabled', location: 'westeurope' }, regions);
    expect(u).toMatchObject({ status: 'disabled', location: 'westeurope', url: w.url });
    expect(u.secrets).toEqual(w.secrets);
    const r = applyInput(u, { rotateSecret: true }, regions);
    expect(r.secrets).toHaveLength(2);
    expect(r.secrets[1]).toEqual(w.secrets[0]);
    expect(r.secrets[0]!.value).not.toBe(w.secrets[0]!.value);
    // Rotating again drops the oldest.
    expect(applyInput(r, { rotateSecret: true }, regions).secrets[1]).toEqual(r.secrets[0]);
  });
});
