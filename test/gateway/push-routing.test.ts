/**
 * A push through the gateway is one session on the primary (issue 10 §10): with the primary
 * down, skopeo's blob existence checks are not answered by a replica (which said "503" and made
 * skopeo fail with "trying to reuse blob … 503"); the user reads why the push cannot happen.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { runGateway, type RunningGateway } from '../../packages/cli/src/gateway-cmd';
import {
  ClientCommandError,
  createClientSandbox,
  skopeoCopy,
  type ClientSandbox,
} from '../helpers/clients';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { buildImage, writeOciLayout } from '../helpers/oci-layout';

jest.setTimeout(300_000);

const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');
const OWNER = 'push-routing-owner-password';

describe('gateway: pushes go to the primary, every request of them', () => {
  let c: TestCluster;
  let gw: RunningGateway;
  let gwHost: string;
  let sb: ClientSandbox;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
    c = await startCluster({ regions: ['eastus', 'westeurope'], auth: {}, ownerPassword: OWNER });
    gw = await runGateway({
      ...c.config,
      gateway: {
        ...c.config.gateway,
        listen: ['127.0.0.1:0'],
        healthIntervalMs: 500,
        // every client is at home in the replica region: reads go there first
        defaultRegion: 'westeurope',
      },
    });
    gwHost = gw.urls[0]!.replace(/^http:\/\//, '');
    sb = await createClientSandbox();
    writeOciLayout(sb.path('src'), { v1: buildImage(), v2: buildImage() });
  });
  afterAll(async () => {
    await sb?.close();
    await gw?.close();
    await c?.close();
  });

  const push = (tag: string) =>
    skopeoCopy(sb, `oci:${sb.path('src')}:${tag}`, `docker://${gwHost}/demo/app:${tag}`, [
      '--dest-creds',
      `owner:${OWNER}`,
    ]);

  it('pushes from a replica region’s clients while the primary is up', async () => {
    await push('v1');
  });

  it('says "the primary region is unavailable" when it is down, not a replica’s 503', async () => {
    await c.stopNode('eastus');
    const err = await push('v2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientCommandError);
    const stderr = (err as ClientCommandError).stderr;
    expect(stderr).toContain('the primary region is unavailable');
    expect(stderr).not.toMatch(/trying to reuse blob/);
  });
});
