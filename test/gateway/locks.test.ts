/**
 * Locks through the gateway and the built CLI (ADR 0015): `meridian repository update` sent to
 * the gateway changes the lock on the primary; pulls through the gateway, served by the
 * replica region, are refused once the lock is replicated; `meridian repository show` against the
 * replica prints that region's copy with the effective lock.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { runGateway, type RunningGateway } from '../../packages/cli/src/gateway-cmd';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { expectOciError, ociErrors, RegistryClient } from '../helpers/http';
import { image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');
const run = promisify(execFile);

async function meridian(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { timeout: 30_000 });
  return stdout;
}

describe('locks through the gateway and the CLI', () => {
  let c: TestCluster;
  let gw: RunningGateway;
  let gwUrl: string;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
    c = await startCluster({ regions: ['eastus', 'westeurope'] });
    gw = await runGateway({
      ...c.config,
      gateway: {
        ...c.config.gateway,
        listen: ['127.0.0.1:0'],
        healthIntervalMs: 500,
        // every client is at home in the replica region: reads go there
        defaultRegion: 'westeurope',
      },
    });
    gwUrl = gw.urls[0]!;
    await c.startWorkers();
  });
  afterAll(async () => {
    await gw?.close();
    await c?.close();
  });

  it('a lock changed through the gateway is enforced by the region the gateway reads from', async () => {
    const img = image();
    const viaGateway = new RegistryClient(gwUrl);
    await viaGateway.pushImage('gwl/app', 'v1', img.blobs, img.manifest);
    await waitFor(async () => {
      const r = await viaGateway.get('/v2/gwl/app/manifests/v1');
      return r.status === 200 && r.header('x-meridian-region') === 'westeurope';
    }, 'v1 served by westeurope through the gateway');

    const out = await meridian(
      'repository',
      'update',
      'gwl/app:v1',
      '--read-enabled',
      'false',
      '--write-enabled',
      'false',
      '--url',
      gwUrl,
    );
    expect(out).toMatch(/effective\s+false\s+false\s+false\s+true\s+tag v1/);

    await waitFor(
      async () => (await viaGateway.get('/v2/gwl/app/manifests/v1')).status === 403,
      'the pull refused through the gateway',
    );
    const denied = await viaGateway.get('/v2/gwl/app/manifests/v1');
    expect(denied.header('x-meridian-region')).toBe('westeurope');
    expectOciError(denied, 403, 'DENIED');
    expect(ociErrors(denied)[0]!.message).toMatch(/readEnabled=false on tag v1/);
    // A push through the gateway goes to the primary, which refuses it.
    const push = await viaGateway.putManifest('gwl/app', 'v1', image().manifest);
    expect(push.status).toBe(403);

    const shown = await meridian('repository', 'show', 'gwl/app', '--url', c.replicas[0]!.url);
    expect(shown).toMatch(/v1\s+sha256:\S+\s+false\s+false\s+false\s+true\s+tag v1/);
    const json = JSON.parse(
      await meridian('repository', 'show', 'gwl/app:v1', '--json', '--url', c.replicas[0]!.url),
    ) as { attributes: { readEnabled: boolean } };
    expect(json.attributes.readEnabled).toBe(false);

    // The CLI names the primary when pointed at a replica for a change.
    const refused = await meridian(
      'repository',
      'update',
      'gwl/app:v1',
      '--read-enabled',
      'true',
      '--url',
      c.replicas[0]!.url,
    ).catch((e: { stderr?: string }) => e.stderr ?? '');
    expect(refused).toContain(c.primary.url);
  });
});
