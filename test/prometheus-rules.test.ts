import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Debian's `prometheus` package ships promtool. */
const PROMTOOL = 'promtool';
const DIR = resolve(__dirname, '../deploy/prometheus');

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(PROMTOOL, args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  if (r.error)
    throw new Error(`${PROMTOOL} did not run (apt-get install prometheus): ${r.error.message}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const ruleFiles = readdirSync(join(DIR, 'rules'))
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join('rules', f));
const testFiles = readdirSync(join(DIR, 'tests'))
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join('tests', f));

describe('Prometheus rules (deploy/prometheus)', () => {
  it('has rule files and unit tests for them', () => {
    expect(ruleFiles).toContain(join('rules', 'meridian.yml'));
    expect(testFiles).toContain(join('tests', 'meridian-test.yml'));
  });

  it('pass promtool check rules', () => {
    const r = promtool('check', 'rules', ...ruleFiles);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('pass their promtool unit tests (recording rules and every alert, firing and not)', () => {
    const r = promtool('test', 'rules', ...testFiles);
    if (r.status !== 0) throw new Error(r.out);
    expect(r.out).toContain('SUCCESS');
  });
});
