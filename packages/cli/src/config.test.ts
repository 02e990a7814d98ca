import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, NodeConfigSchema, resolveNode } from './config';

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
    expect(resolveNode(c).listen).toBe('0.0.0.0:7000');
    expect(c.uploads.idleTimeoutSeconds).toBe(120);
    expect(c.storage).toBe('/srv/reg');
    expect(c.cache.ttlMs).toBe(1000);
  });

  it('takes trusted proxies as addresses or CIDR ranges and names a bad one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meridian-config-'));
    const ok = join(dir, 'ok.yaml');
    writeFileSync(ok, 'auth:\n  trustedProxies: [loopback, 10.0.0.0/8, "fd00::/8", 192.168.1.7]\n');
    expect(loadConfig(NodeConfigSchema, { file: ok, env: {} }).auth.trustedProxies).toEqual([
      'loopback',
      '10.0.0.0/8',
      'fd00::/8',
      '192.168.1.7',
    ]);
    for (const bad of ['10.0.0.0/33', 'gateway.internal', '10.0.0.0/8/1', '*']) {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, `auth:\n  trustedProxies: ["${bad}"]\n`);
      expect(() => loadConfig(NodeConfigSchema, { file, env: {} })).toThrow(/auth\.trustedProxies/);
    }
  });

  it('names the bad key and its environment variable', () => {
    expect(() =>
      loadConfig(NodeConfigSchema, { env: { MERIDIAN_UPLOADS_IDLE_TIMEOUT_SECONDS: 'soon' } }),
    ).toThrow(/uploads\.idleTimeoutSeconds.*MERIDIAN_UPLOADS_IDLE_TIMEOUT_SECONDS/);
    const dir = mkdtempSync(join(tmpdir(), 'meridian-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'cache:\n  tllMs: 5\n');
    expect(() => loadConfig(NodeConfigSchema, { file, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig(NodeConfigSchema, { file, env: {} })).toThrow(
      /cache\.tllMs.*unknown key/,
    );
  });

  it('applies the region entry of a cluster and checks cross-key rules', () => {
    const regions = [
      { name: 'eastus', role: 'primary', endpoint: 'http://127.0.0.1:5001', storage: '/d/east' },
      {
        name: 'westeurope',
        role: 'replica',
        endpoint: 'http://127.0.0.1:5002',
        storage: '/d/west',
      },
    ];
    const c = loadConfig(NodeConfigSchema, {
      env: {
        MERIDIAN_REGIONS: JSON.stringify(regions),
        MERIDIAN_REDIS: 'redis://127.0.0.1:6379',
        MERIDIAN_REGION: 'westeurope',
      },
    });
    expect(resolveNode(c)).toEqual({
      listen: '127.0.0.1:5002',
      storage: '/d/west',
      role: 'replica',
      primaryUrl: 'http://127.0.0.1:5001',
    });
    expect(() =>
      loadConfig(NodeConfigSchema, {
        env: { MERIDIAN_REGIONS: JSON.stringify(regions), MERIDIAN_REGION: 'westeurope' },
      }),
    ).toThrow(/MERIDIAN_REDIS/);
    expect(() =>
      loadConfig(NodeConfigSchema, {
        env: {
          MERIDIAN_REGIONS: JSON.stringify(regions),
          MERIDIAN_REDIS: 'redis://x',
          MERIDIAN_REGION: 'mars',
        },
      }),
    ).toThrow(/"region".*mars/);
  });
});
