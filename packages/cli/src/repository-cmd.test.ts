import { formatView, parseLockRef, updateBody } from './repository-cmd';

describe('meridian repository', () => {
  it('splits REPO[:TAG|@DIGEST]', () => {
    expect(parseLockRef('team/app')).toEqual({ repository: 'team/app' });
    expect(parseLockRef('team/app:v1.2')).toEqual({ repository: 'team/app', tag: 'v1.2' });
    expect(parseLockRef('team/app@sha256:abc')).toEqual({
      repository: 'team/app',
      digest: 'sha256:abc',
    });
  });

  it('turns options into the admin API body, and refuses a change of nothing', () => {
    expect(
      updateBody('app:v1', { writeEnabled: 'false', deleteEnabled: 'false', readEnabled: 'true' }),
    ).toEqual({
      repository: 'app',
      tag: 'v1',
      writeEnabled: false,
      deleteEnabled: false,
      readEnabled: true,
    });
    expect(updateBody('app', { writeOnce: ['v*', 'regex:rel-\\d+'] })).toEqual({
      repository: 'app',
      writeOnce: ['v*', 'regex:rel-\\d+'],
    });
    expect(updateBody('app', { clearWriteOnce: true, writeOnce: ['x'] })).toEqual({
      repository: 'app',
      writeOnce: [],
    });
    expect(() => updateBody('app', { writeEnabled: 'no' })).toThrow('--write-enabled');
    expect(() => updateBody('app', {})).toThrow('nothing to change');
  });

  it('prints the effective lock of every tag and what set it', () => {
    const on = { deleteEnabled: true, writeEnabled: true, readEnabled: true, listEnabled: true };
    const out = formatView({
      repository: 'app',
      attributes: { ...on, writeOnce: ['v*'] },
      effective: { ...on, lockedBy: {} },
      seq: 5,
      updatedAt: '2026-12-02T12:00:00.000Z',
      tags: [
        {
          tag: 'v1',
          digest: `sha256:${'a'.repeat(64)}`,
          effective: {
            ...on,
            writeEnabled: false,
            deleteEnabled: false,
            lockedBy: { writeEnabled: 'write-once rule v*', deleteEnabled: 'write-once rule v*' },
          },
        },
      ],
      manifests: [],
      lockedTagNames: ['gone'],
    });
    expect(out).toContain('write-once tags: v*');
    expect(out).toMatch(/v1\s+sha256:a+…\s+false\s+false\s+true\s+true\s+write-once rule v\*/);
    expect(out).toContain('locks on tag names not present: gone');
    expect(out).not.toContain('LAST PULLED');
    const withPulls = formatView({
      repository: 'app',
      attributes: on,
      effective: { ...on, lockedBy: {} },
      tags: [
        { tag: 'v1', digest: 'sha256:1', effective: { ...on, lockedBy: {} } },
        { tag: 'v2', digest: 'sha256:2', effective: { ...on, lockedBy: {} } },
      ],
      usage: { tags: { v1: { lastPulledAt: Date.parse('2026-12-01T00:00:00Z'), count: 7 } } },
    });
    expect(withPulls).toMatch(/v1 .*2026-12-01T00:00:00.000Z\s+7/);
    expect(withPulls).toMatch(/v2 .*never\s+0/);
  });
});
