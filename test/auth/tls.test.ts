/**
 * `meridian serve --tls-cert/--tls-key`: the node speaks HTTPS, its challenge names an https
 * realm, and a client that trusts the certificate logs in and gets a token.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { RunningNode } from '@meridian/registry';
import { loadConfig, NodeConfigSchema } from '../../packages/cli/src/config';
import { serve } from '../../packages/cli/src/serve';
import { runGateway } from '../../packages/cli/src/gateway-cmd';
import { startTestNode } from '../helpers/node';
import { basic } from '../helpers/auth-node';

function httpsGet(
  url: string,
  ca: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    }).on('error', reject);
  });
}

describe('serve with TLS', () => {
  let dir: string;
  let node: RunningNode;
  let ca: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-tls-'));
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1'],
        ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
    ca = readFileSync(join(dir, 'cert.pem'));
    const config = loadConfig(NodeConfigSchema, {
      env: {},
      overrides: {
        listen: '127.0.0.1:0',
        storage: join(dir, 'data'),
        'tls.cert': join(dir, 'cert.pem'),
        'tls.key': join(dir, 'key.pem'),
        'log.level': 'silent',
      },
    });
    node = await serve(config, { ownerPassword: 'tls-owner-password' });
  });
  afterAll(async () => {
    await node?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with an https realm, and issues tokens over it', async () => {
    expect(node.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const challenge = await httpsGet(`${node.url}/v2/`, ca);
    expect(challenge.status).toBe(401);
    expect(challenge.headers['www-authenticate']).toBe(
      `Bearer realm="${node.url}/oauth2/token",service="meridian"`,
    );
    const token = await httpsGet(`${node.url}/oauth2/token?service=meridian`, ca, {
      Authorization: basic('owner', 'tls-owner-password'),
    });
    expect(token.status).toBe(200);
    const { token: jwt } = JSON.parse(token.body) as { token: string };
    expect((await httpsGet(`${node.url}/v2/`, ca, { Authorization: `Bearer ${jwt}` })).status).toBe(
      200,
    );
  });

  it('refuses a configuration with a certificate but no key, naming the keys', () => {
    expect(() =>
      loadConfig(NodeConfigSchema, { env: {}, overrides: { 'tls.cert': join(dir, 'cert.pem') } }),
    ).toThrow(/tls.*MERIDIAN_TLS_CERT/);
  });
});

describe('gateway with TLS', () => {
  it('serves HTTPS with --tls-cert/--tls-key and forwards to its regions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meridian-gw-tls-'));
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1'],
        ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
    const region = await startTestNode();
    const config = loadConfig(NodeConfigSchema, {
      env: {},
      checkRegion: false,
      overrides: {
        regions: [
          { name: 'eastus', role: 'primary', endpoint: region.url, storage: region.storage },
        ],
        'gateway.listen': ['127.0.0.1:0'],
        'tls.cert': join(dir, 'cert.pem'),
        'tls.key': join(dir, 'key.pem'),
        'log.level': 'silent',
      },
    });
    const gateway = await runGateway(config);
    try {
      const url = gateway.urls[0]!;
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await httpsGet(`${url}/v2/`, readFileSync(join(dir, 'cert.pem')));
      expect(res.status).toBe(200);
      expect(res.headers['x-meridian-region']).toBe('eastus');
    } finally {
      await gateway.close();
      await region.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
