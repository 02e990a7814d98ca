import { AdminApiError, parseExpiry, parseRule } from './admin-cmd';

describe('admin command arguments', () => {
  it('reads scope-map rules as PATTERN:ACTION[,ACTION]', () => {
    expect(parseRule('team-a/*:content/read,content/write')).toEqual({
      repository: 'team-a/*',
      actions: ['content/read', 'content/write'],
    });
    expect(() => parseRule('content/read')).toThrow(AdminApiError);
  });

  it('reads expiries as 30d/12h/90m from now or an ISO time', () => {
    const in30d = Date.parse(parseExpiry('30d')!) - Date.now();
    expect(Math.abs(in30d - 30 * 86_400_000)).toBeLessThan(5000);
    expect(parseExpiry('2030-01-02T03:04:05Z')).toBe('2030-01-02T03:04:05.000Z');
    expect(parseExpiry(undefined)).toBeUndefined();
    expect(() => parseExpiry('soon')).toThrow(/invalid expiry/);
  });
});
