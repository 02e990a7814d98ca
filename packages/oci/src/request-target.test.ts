import { parseRequestTarget } from './request-target';

describe('parseRequestTarget', () => {
  test('origin-form keeps the path exactly as sent', () => {
    expect(parseRequestTarget('/v2/a/../b/manifests/x?n=1')).toEqual({
      path: '/v2/a/../b/manifests/x',
      query: '?n=1',
    });
    expect(parseRequestTarget('/MERIDIAN//v1/%61dmin;x')).toEqual({
      path: '/MERIDIAN//v1/%61dmin;x',
      query: '',
    });
  });

  test('absolute-form gives the path, the query and the authority', () => {
    expect(parseRequestTarget('http://127.0.0.1:5000/meridian/v1/admin/identities')).toEqual({
      path: '/meridian/v1/admin/identities',
      query: '',
      authority: '127.0.0.1:5000',
    });
    expect(parseRequestTarget('HTTPS://reg.example?x=1')).toEqual({
      path: '/',
      query: '?x=1',
      authority: 'reg.example',
    });
  });

  test('anything else is refused', () => {
    for (const t of [
      '*',
      'reg.example:443',
      '',
      'http://',
      'http://user@host/v2/',
      'ftp://h/v2/',
      '/v2/#x',
    ])
      expect(parseRequestTarget(t)).toBeUndefined();
    expect(parseRequestTarget(`/${'a'.repeat(9000)}`)).toBeUndefined();
  });
});
