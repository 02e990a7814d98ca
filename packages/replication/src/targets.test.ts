import { parseTargetId, targetId, type SyncTarget } from './targets';

describe('targetId', () => {
  it('round-trips through parseTargetId', () => {
    const targets: SyncTarget[] = [
      { kind: 'tag', repository: 'a/b', tag: 'v1.0-rc_1' },
      { kind: 'blob', repository: 'x', digest: `sha256:${'a'.repeat(64)}` },
      { kind: 'manifest', repository: 'x/y/z', digest: `sha512:${'b'.repeat(128)}` },
    ];
    for (const t of targets) expect(parseTargetId(targetId(t))).toEqual(t);
  });

  it('rejects ids it does not know', () => {
    expect(parseTargetId('referrer|a|b')).toBeUndefined();
    expect(parseTargetId('tag|a')).toBeUndefined();
    expect(parseTargetId('tag|a|b|c')).toBeUndefined();
  });
});
