/**
 * Acceptance with the real client (issue 16, ADR 0020): Debian's `azure-cli` runs unchanged
 * against a Meridian node with `-u/-p`. How the test reaches the node without touching the
 * machine's configuration:
 *   - an isolated `AZURE_CONFIG_DIR` where `az cloud register` declares a cloud whose ACR login
 *     server suffix is `.acr.test:<port>`, so `-n meridian` is `meridian.acr.test:<port>`;
 *   - `unshare -rm` (a user and mount namespace) bind-mounts a hosts file naming
 *     `meridian.acr.test` 127.0.0.1 over `/etc/hosts` for the `az` process only;
 *   - HTTPS with a certificate from a test CA made with openssl, trusted through
 *     `REQUESTS_CA_BUNDLE`.
 * Everything `az` does is real: the `/v2/` challenge, the token request (`grant_type=password`
 * with ACR's `metadata_read`/`metadata_write`/`delete` scopes), then `/acr/v1` and `/v2` with the
 * bearer token.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { AuthService } from '@meridian/auth';
import { Registry, startNodeServer } from '@meridian/registry';
import { openStore, type ObjectStore } from '@meridian/storage';
import { AuthedClient, basic, OWNER_PASSWORD } from '../helpers/auth-node';
import { image, imageIndex, type Image, type Manifest } from '../helpers/images';
import { newStorage } from '../helpers/node';

const run = promisify(execFile);
const HOST = 'meridian.acr.test';

function haveTools(): string | undefined {
  for (const [tool, args] of [
    ['az', ['version']],
    ['openssl', ['version']],
    ['unshare', ['-rm', 'true']],
  ] as const) {
    try {
      execFileSync(tool, args, { stdio: 'ignore' });
    } catch {
      return tool;
    }
  }
  return undefined;
}

const missing = haveTools();
if (missing)
  throw new Error(`the az acr test needs ${missing} (apt: azure-cli, openssl, util-linux)`);

/** A CA and a server certificate for `HOST`, made with openssl in `dir`. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(dir, f);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=Meridian test CA',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  );
  ssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    `/CN=${HOST}`,
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
  );
  writeFileSync(p('ext.cnf'), `subjectAltName=DNS:${HOST}\nextendedKeyUsage=serverAuth\n`);
  ssl(
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    p('server.pem'),
    '-extfile',
    p('ext.cnf'),
  );
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

describe('az acr (Debian azure-cli 2.45) against a Meridian node', () => {
  let dir: string;
  let store: ObjectStore;
  let auth: AuthService;
  let node: { url: string; close(): Promise<void> };
  /** The same registry over plain HTTP, for the test's own pushes and checks. */
  let plain: { url: string; close(): Promise<void> };
  let cleanup: () => void;
  let owner: AuthedClient;
  let app: Image;
  let arm: Image;
  let index: Manifest;
  let env: NodeJS.ProcessEnv;

  /** Runs `az` in its own mount namespace, where `HOST` resolves to 127.0.0.1. */
  const az = async (...args: string[]): Promise<string> => {
    const script = 'mount --bind "$HOSTS" /etc/hosts && exec az "$@"';
    const { stdout } = await run('unshare', ['-rm', 'sh', '-c', script, 'az', ...args], {
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  };
  const azJson = async <T>(...args: string[]): Promise<T> =>
    JSON.parse(await az(...args, '-o', 'json')) as T;
  const creds = ['-u', 'owner', '-p', OWNER_PASSWORD];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-az-'));
    const tls = makeCertificates(dir);
    const fresh = await newStorage('fs');
    cleanup = () => fresh.cleanup();
    store = await openStore(fresh.location);
    const log = pino({ level: 'silent' });
    auth = new AuthService({
      region: 'local',
      bootstrapOwner: true,
      ownerPassword: OWNER_PASSWORD,
      source: store,
      local: store,
      log,
    });
    await auth.start();
    const registry = new Registry({ store });
    node = await startNodeServer({
      registry,
      log,
      listen: '127.0.0.1:0',
      purgeIntervalMs: 0,
      auth: { service: auth },
      tls: { cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
    });
    plain = await startNodeServer({
      registry,
      log,
      listen: '127.0.0.1:0',
      purgeIntervalMs: 0,
      auth: { service: auth },
    });
    const port = new URL(node.url).port;
    writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost\n127.0.0.1 ${HOST}\n`);
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      AZURE_CONFIG_DIR: join(dir, 'azure'),
      AZURE_CORE_COLLECT_TELEMETRY: 'false',
      AZURE_CORE_NO_COLOR: 'true',
      REQUESTS_CA_BUNDLE: tls.ca,
      HOSTS: join(dir, 'hosts'),
    };
    await az(
      'cloud',
      'register',
      '-n',
      'MeridianTest',
      '--endpoint-resource-manager',
      'https://management.acr.test/',
      '--endpoint-active-directory',
      'https://login.acr.test',
      '--endpoint-active-directory-resource-id',
      'https://management.acr.test/',
      '--endpoint-active-directory-graph-resource-id',
      'https://graph.acr.test/',
      '--suffix-acr-login-server-endpoint',
      `.acr.test:${port}`,
      '-o',
      'none',
    );
    await az('cloud', 'set', '-n', 'MeridianTest', '-o', 'none');

    owner = new AuthedClient(plain.url, basic('owner', OWNER_PASSWORD));
    app = image();
    arm = image();
    await owner.pushImage('team-a/app', 'v1', app.blobs, app.manifest);
    await owner.pushImage('team-a/app', arm.manifest.digest, arm.blobs, arm.manifest);
    index = imageIndex({ manifests: [app.manifest, arm.manifest] });
    expect((await owner.putManifest('team-a/app', 'multi', index)).status).toBe(201);
    expect((await owner.putManifest('team-a/app', 'v2', app.manifest)).status).toBe(201);
    const other = image();
    await owner.pushImage('team-b/web', 'latest', other.blobs, other.manifest);
  });

  afterAll(async () => {
    await node?.close();
    await plain?.close();
    await auth?.close();
    await store?.close();
    cleanup?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('repository list, show, show-tags, show-manifests', async () => {
    expect(await azJson('acr', 'repository', 'list', '-n', 'meridian', ...creds)).toEqual([
      'team-a/app',
      'team-b/web',
    ]);
    expect(
      await azJson(
        'acr',
        'repository',
        'show-tags',
        '-n',
        'meridian',
        '--repository',
        'team-a/app',
        ...creds,
      ),
    ).toEqual(['multi', 'v1', 'v2']);
    const detail = await azJson<{ name: string; digest: string }[]>(
      'acr',
      'repository',
      'show-tags',
      '-n',
      'meridian',
      '--repository',
      'team-a/app',
      '--detail',
      '--orderby',
      'time_desc',
      '--top',
      '2',
      ...creds,
    );
    expect(detail.map((t) => t.name)).toEqual(['v2', 'multi']);
    expect(detail[0]!.digest).toBe(app.manifest.digest);

    const repo = await azJson<Record<string, unknown>>(
      'acr',
      'repository',
      'show',
      '-n',
      'meridian',
      '--repository',
      'team-a/app',
      ...creds,
    );
    expect(repo).toMatchObject({ imageName: 'team-a/app', manifestCount: 3, tagCount: 3 });
    const tag = await azJson<Record<string, unknown>>(
      'acr',
      'repository',
      'show',
      '-n',
      'meridian',
      '--image',
      'team-a/app:multi',
      ...creds,
    );
    expect(tag).toMatchObject({ name: 'multi', digest: index.digest });

    const manifests = await azJson<{ digest: string; tags: string[] }[]>(
      'acr',
      'repository',
      'show-manifests',
      '-n',
      'meridian',
      '--repository',
      'team-a/app',
      ...creds,
    );
    expect(new Map(manifests.map((m) => [m.digest, m.tags]))).toEqual(
      new Map([
        [app.manifest.digest, ['v1', 'v2']],
        [index.digest, ['multi']],
        [arm.manifest.digest, []],
      ]),
    );
  });

  test('manifest list-metadata, show-metadata, update-metadata', async () => {
    const list = await azJson<{ digest: string; architecture?: string }[]>(
      'acr',
      'manifest',
      'list-metadata',
      '-r',
      'meridian',
      '-n',
      'team-a/app',
      ...creds,
    );
    expect(list.find((m) => m.digest === app.manifest.digest)?.architecture).toBe('amd64');
    // By tag, az asks for the tag (ACR's `_tags/{tag}`): the tag's attributes.
    const shown = await azJson<{ name: string; digest: string }>(
      'acr',
      'manifest',
      'show-metadata',
      '-r',
      'meridian',
      '-n',
      'team-a/app:v1',
      ...creds,
    );
    expect(shown).toMatchObject({ name: 'v1', digest: app.manifest.digest });
    const byDigest = await azJson<{ digest: string; tags: string[]; architecture: string }>(
      'acr',
      'manifest',
      'show-metadata',
      '-r',
      'meridian',
      '-n',
      `team-a/app@${app.manifest.digest}`,
      ...creds,
    );
    expect(byDigest).toMatchObject({ tags: ['v1', 'v2'], architecture: 'amd64' });
    const updated = await azJson<{ changeableAttributes: Record<string, boolean> }>(
      'acr',
      'manifest',
      'update-metadata',
      '-r',
      'meridian',
      '-n',
      `team-a/app@${index.digest}`,
      '--write-enabled',
      'false',
      ...creds,
    );
    expect(updated.changeableAttributes.writeEnabled).toBe(false);
    // The lock is Meridian's: a push over the locked manifest's tag is refused.
    expect((await owner.putManifest('team-a/app', 'multi', app.manifest)).status).toBe(403);
    await az(
      'acr',
      'manifest',
      'update-metadata',
      '-r',
      'meridian',
      '-n',
      `team-a/app@${index.digest}`,
      '--write-enabled',
      'true',
      '-o',
      'none',
      ...creds,
    );
    expect((await owner.putManifest('team-a/app', 'multi', index)).status).toBe(201);
  });

  test('repository update, untag, delete', async () => {
    const locked = await azJson<{ changeableAttributes: Record<string, boolean> }>(
      'acr',
      'repository',
      'update',
      '-n',
      'meridian',
      '--image',
      'team-a/app:v2',
      '--delete-enabled',
      'false',
      ...creds,
    );
    expect(locked.changeableAttributes.deleteEnabled).toBe(false);
    await expect(
      az('acr', 'repository', 'untag', '-n', 'meridian', '--image', 'team-a/app:v2', ...creds),
    ).rejects.toThrow(/locked: deleteEnabled=false/);
    await az(
      'acr',
      'repository',
      'update',
      '-n',
      'meridian',
      '--image',
      'team-a/app:v2',
      '--delete-enabled',
      'true',
      '-o',
      'none',
      ...creds,
    );
    await az('acr', 'repository', 'untag', '-n', 'meridian', '--image', 'team-a/app:v2', ...creds);
    expect((await owner.get('/v2/team-a/app/tags/list')).json<{ tags: string[] }>().tags).toEqual([
      'multi',
      'v1',
    ]);

    await az(
      'acr',
      'repository',
      'delete',
      '-n',
      'meridian',
      '--image',
      'team-a/app:v1',
      '--yes',
      ...creds,
    );
    expect((await owner.get(`/v2/team-a/app/manifests/${app.manifest.digest}`)).status).toBe(404);

    await az(
      'acr',
      'repository',
      'delete',
      '-n',
      'meridian',
      '--repository',
      'team-b/web',
      '--yes',
      ...creds,
    );
    expect(await azJson('acr', 'repository', 'list', '-n', 'meridian', ...creds)).toEqual([
      'team-a/app',
    ]);
  });

  test('a wrong password is refused with the registry error', async () => {
    await expect(
      az(
        'acr',
        'repository',
        'show-tags',
        '-n',
        'meridian',
        '--repository',
        'team-a/app',
        '-u',
        'owner',
        '-p',
        'wrong',
      ),
    ).rejects.toThrow(/401/);
  });
});
