import { formatReport, parseDuration } from './gc-cmd';

describe('meridian gc', () => {
  it('reads durations as operators write them', () => {
    expect(parseDuration('24h')).toBe(86_400);
    expect(parseDuration('30m')).toBe(1_800);
    expect(parseDuration('2d')).toBe(172_800);
    expect(parseDuration('90')).toBe(90);
    expect(() => parseDuration('1w')).toThrow('--grace: not a duration: 1w');
    expect(() => parseDuration('-5h')).toThrow();
  });

  it('prints what a dry run would free', () => {
    const out = formatReport({
      region: 'eastus',
      role: 'primary',
      mode: 'full',
      dryRun: true,
      graceSeconds: 86_400,
      repositories: 3,
      manifests: 10,
      blobsScanned: 40,
      linksRemoved: 2,
      referrerEntriesRemoved: 0,
      blobsDeleted: 3,
      bytesFreed: 3 * 1024 * 1024,
      conflicts: 1,
      uploadsPurged: 0,
      stagingRemoved: 0,
      unreadableRepositories: [],
      durationMs: 1500,
    });
    expect(out).toMatch(/^region eastus \(primary, full\), dry run: would free 3\.0 MiB in 1\.5 s/);
    expect(out).toMatch(/blobs\s+3 \(3\.0 MiB\)/);
    expect(out).toMatch(/1 candidates rescued by concurrent pushes/);
  });
});
