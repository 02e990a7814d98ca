/**
 * The "done when", with auth on in two regions: the CLI creates a scope map and a
 * repository-scoped token and enables the admin user; skopeo pushes through the gateway with
 * the token; podman logs in to the replica and pulls; a token issued in one region works in the
 * other; a replica's fallback reads carry its own token; with the primary stopped, the replica
 * still issues tokens and serves pulls.
 */
import { execFile } from 'node:child_process';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { runGateway, type RunningGateway } from '../../packages/cli/src/gateway-cmd';
import { AuthedClient, basic, fetchToken } from '../helpers/auth-node';
import {
  ClientCommandError,
  createClientSandbox,
  skopeoCopy,
  type ClientSandbox,
} from '../helpers/clients';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { buildImage, readOciLayout, writeOciLayout } from '../helpers/oci-layout';
import { waitFor } from '../helpers/wait';

jest.setTimeout(300_000);

const CLI = resolve(__dirname, '../../packages/cli/dist/main.js');
const OWNER = 'cluster-owner-password';

describe('auth across regions, with real clients', () => {
  let c: TestCluster;
  let gw: RunningGateway;
  let gwHost: string;
  let sb: ClientSandbox;
  const img = buildImage();
  let ci: { user: string; password: string };

  const meridian = async (args: string[]): Promise<unknown> => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [CLI, ...args, '--url', `http://${gwHost}`, '--user', 'owner'],
      { env: { ...process.env, MERIDIAN_PASSWORD: OWNER } },
    );
    return stdout.trim() ? JSON.parse(stdout) : undefined;
  };

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
    c = await startCluster({ regions: ['eastus', 'westeurope'], auth: {}, ownerPassword: OWNER });
    gw = await runGateway({
      ...c.config,
      gateway: { ...c.config.gateway, listen: ['127.0.0.1:0'], healthIntervalMs: 500 },
    });
    gwHost = gw.urls[0]!.replace(/^http:\/\//, '');
    sb = await createClientSandbox();
    writeOciLayout(sb.path('src'), { v1: img });
  });
  afterAll(async () => {
    await sb?.close();
    await gw?.close();
    await c?.close();
  });

  it('creates a scope map and a token with the CLI, through the gateway', async () => {
    await meridian([
      'scope-map',
      'create',
      'team-a-rw',
      '--action',
      'team-a/*:content/read,content/write',
    ]);
    const out = (await meridian(['token', 'create', 'ci-team-a', '--scope-map', 'team-a-rw'])) as {
      token: { name: string; enabled: boolean };
      passwords: { name: string; password: string }[];
    };
    expect(out.token).toMatchObject({ name: 'ci-team-a', enabled: true });
    expect(out.passwords.map((p) => p.name)).toEqual(['password1', 'password2']);
    ci = { user: 'ci-team-a', password: out.passwords[0]!.password };
    const listed = (await meridian(['token', 'list'])) as { tokens: unknown[] };
    expect(JSON.stringify(listed)).not.toContain(ci.password);
    const admin = (await meridian(['admin-user', 'enable'])) as {
      username: string;
      newPasswords: unknown[];
    };
    expect(admin.username).toBe('meridian');
    expect(admin.newPasswords).toHaveLength(2);
  });

  it('pushes through the gateway with skopeo --dest-creds, only inside the token’s scope', async () => {
    await skopeoCopy(sb, `oci:${sb.path('src')}:v1`, `docker://${gwHost}/team-a/app:v1`, [
      '--dest-creds',
      `${ci.user}:${ci.password}`,
    ]);
    const denied = await skopeoCopy(
      sb,
      `oci:${sb.path('src')}:v1`,
      `docker://${gwHost}/team-b/app:v1`,
      ['--dest-creds', `${ci.user}:${ci.password}`],
    ).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ClientCommandError);
    expect((denied as ClientCommandError).stderr).toMatch(/denied|unauthorized|401|403/i);
    const noCreds = await skopeoCopy(
      sb,
      `oci:${sb.path('src')}:v1`,
      `docker://${gwHost}/team-a/app:v2`,
    ).catch((e: unknown) => e);
    expect(noCreds).toBeInstanceOf(ClientCommandError);
  });

  it('a replica falls back to the primary with its own token before replication', async () => {
    const replica = c.replicas[0]!;
    const t = await fetchToken(replica.url, ci, ['repository:team-a/app:pull']);
    const res = await new AuthedClient(replica.url, `Bearer ${t.token}`).get(
      '/v2/team-a/app/manifests/v1',
      { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } },
    );
    expect(res.status).toBe(200);
    expect(res.header('docker-content-digest')).toBe(img.manifest.digest);
  });

  it('accepts a token issued in one region in the other', async () => {
    const fromPrimary = await fetchToken(c.primary.url, ci, ['repository:team-a/app:pull']);
    const fromReplica = await fetchToken(c.replicas[0]!.url, ci, ['repository:team-a/app:pull']);
    for (const [token, url] of [
      [fromPrimary.token!, c.replicas[0]!.url],
      [fromReplica.token!, c.primary.url],
    ] as const) {
      const res = await new AuthedClient(url, `Bearer ${token}`).head(
        '/v2/team-a/app/manifests/v1',
      );
      expect(res.status).toBe(200);
    }
  });

  it('podman logs in to the replica with the token and pulls', async () => {
    await c.startWorkers();
    const replica = c.replicas[0]!;
    await waitFor(
      async () => {
        const t = await fetchToken(replica.url, ci, ['repository:team-a/app:pull']);
        const r = await new AuthedClient(replica.url, `Bearer ${t.token}`).head(
          '/v2/team-a/app/blobs/' + img.layers[0]!.digest,
        );
        return r.status === 200;
      },
      'the layer replicated to the replica',
      60_000,
    );
    const ref = `${replica.host}/team-a/app:v1`;
    await sb.podman([
      'login',
      '--tls-verify=false',
      '-u',
      ci.user,
      '-p',
      ci.password,
      replica.host,
    ]);
    await sb.podman(['pull', '--tls-verify=false', ref]);
    const { stdout } = await sb.podman(['image', 'inspect', ref, '--format', '{{.Id}}']);
    expect(stdout.trim()).toBe(img.config.digest.split(':')[1]);
    const bad = await sb
      .podman(['login', '--tls-verify=false', '-u', ci.user, '-p', 'wrong-password', replica.host])
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ClientCommandError);
  });

  it('with the primary stopped, the replica still issues tokens and serves pulls', async () => {
    await c.stopWorkers();
    await c.stopNode('eastus');
    // The whole region is gone: its storage too (a file where the directory was).
    const primaryDir = c.primary.storage;
    renameSync(primaryDir, `${primaryDir}.away`);
    writeFileSync(primaryDir, 'region down');
    await new Promise((r) => setTimeout(r, 500));
    const replica = c.replicas[0]!;
    const t = await fetchToken(replica.url, ci, ['repository:team-a/app:pull,push']);
    expect(t.status).toBe(200);
    const out = sb.path('pulled');
    await skopeoCopy(sb, `docker://${replica.host}/team-a/app:v1`, `oci:${out}:v1`, [
      '--src-creds',
      `${ci.user}:${ci.password}`,
    ]);
    expect(readOciLayout(out).manifests[0]!.digest).toBe(img.manifest.digest);
    // The owner can log in there too, but changes need the primary region.
    const res = await new AuthedClient(replica.url, basic('owner', OWNER)).post(
      '/meridian/v1/admin/tokens/ci-team-a/disable',
    );
    expect(res.status).toBe(503);
    rmSync(primaryDir);
    renameSync(`${primaryDir}.away`, primaryDir);
  });
});
