import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_NODE_OPTIONS, nodeOptionsFor } from './node-options';

describe('the V8 settings Meridian ships with', () => {
  it('are what the container image runs with', () => {
    const dockerfile = readFileSync(join(__dirname, '../../../deploy/Dockerfile'), 'utf8');
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(runtime.slice(0, runtime.indexOf('ENTRYPOINT'))).toContain(
      `ENV NODE_OPTIONS=${DEFAULT_NODE_OPTIONS}\n`,
    );
  });

  it("give way to the operator's NODE_OPTIONS", () => {
    expect(nodeOptionsFor({})).toBe('--max-semi-space-size=2');
    expect(nodeOptionsFor({ NODE_OPTIONS: ' ' })).toBe('--max-semi-space-size=2');
    expect(nodeOptionsFor({ NODE_OPTIONS: '--max-semi-space-size=16' })).toBe(
      '--max-semi-space-size=16',
    );
  });
});
