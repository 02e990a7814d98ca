import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, NodeConfigSchema } from './config';

describe('loadConfig', () => {
  it('layers defaults, file, environment and flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meridian-config-'));
    const file = join(dir, 'meridian.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:6000\nuploads:\n  idleTimeoutSeconds: 60\n');
    const c = loadConfig(NodeConfigSchema, {
      file,
      env: { MERIDIAN_UPLOADS_IDLE_TIMEOUT_SECONDS: '120', MERIDIAN_STORAGE: '/srv/reg' },
      overrides: { listen: '0.0.0.0:7000' },
    });
    expect(c.listen).toBe('0.0.0.0:7000');
    expect(c.uploads.idleTimeoutSeconds).toBe(120);
    expect(c.storage).toBe('/srv/reg');
    expect(c.cache.ttlMs).toBe(1000);
  });

  it('names the bad key and its environment variable', () => {
    expect(() => loadConfig(NodeConfigSchema, { env: { MERIDIAN_UPLOADS_IDLE_TIMEOUT_SECONDS: 'soon' } })).toThrow(
      /uploads\.idleTimeoutSeconds.*MERIDIAN_UPLOADS_IDLE_TIMEOUT_SECONDS/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'meridian-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'cache:\n  tllMs: 5\n');
    expect(() => loadConfig(NodeConfigSchema, { file, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig(NodeConfigSchema, { file, env: {} })).toThrow(/cache\.tllMs.*unknown key/);
  });
});
