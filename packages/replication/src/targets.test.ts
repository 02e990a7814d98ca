import { parseTargetId, targetId, type SyncTarget } from './targets';

describe('targetId', () => {
  it('round-trips through parseTargetId', () => {
    const targets: SyncTarget[] = [
      { kind: 'tag', repository: 'a/b', tag: 'v1.0-rc_1' },
      { kind: 'blob', repository: 'x', digest: `sha256:${'a'.repeat(64)}` },
      { kind: 'manifest', repository: 'x/y/z', digest: `sha512:${'b'.repeat(128)}` },
      { kind: 'lock', repository: 'a/b', lock: 'repository' },
      { kind: 'lock', repository: 'a/b', lock: 'tag=_v1.0' },
      { kind: 'lock', repository: 'a', lock: `manifest=sha256:${'c'.repeat(64)}` },
    ];
    for (const t of targets) expect(parseTargetId(targetId(t))).toEqual(t);
  });

  it('rejects ids it does not know', () => {
    expect(parseTargetId('referrer|a|b')).toBeUndefined();
    expect(parseTargetId('tag|a')).toBeUndefined();
    expect(parseTargetId('tag|a|b|c')).toBeUndefined();
    expect(parseTargetId('lock|a|everything')).toBeUndefined();
  });
});
