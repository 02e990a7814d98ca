/**
 * The `meridian` CLI shaped like `az acr` (issue 16): the built binary against a node with auth,
 * through `meridian login`'s saved login, with every output format, and errors that name the fix.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { meridian } from '../helpers/cli';
import { image, type Image } from '../helpers/images';
import {
  AuthedClient,
  basic,
  OWNER_PASSWORD,
  startAuthNode,
  type AuthNode,
} from '../helpers/auth-node';

describe('meridian repository / manifest (az acr shaped)', () => {
  let node: AuthNode;
  let owner: AuthedClient;
  let dir: string;
  let env: Record<string, string>;
  let app: Image;
  let other: Image;

  const cli = (...args: string[]) => meridian(args, env);
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: r.stderr });
    return r.stdout;
  };

  beforeAll(async () => {
    node = await startAuthNode();
    owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
    app = image();
    other = image();
    await owner.pushImage('team-a/app', 'v1', app.blobs, app.manifest);
    await owner.pushImage('team-a/app', 'v2', app.blobs, app.manifest);
    await owner.pushImage('team-a/app', 'old', other.blobs, other.manifest);
    await owner.pushImage('team-b/web', 'latest', other.blobs, other.manifest);
    dir = mkdtempSync(join(tmpdir(), 'meridian-cli-acr-'));
    env = { MERIDIAN_CONFIG_DIR: dir };
  });

  afterAll(async () => {
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('without a login the error names the fix; login saves it, readable by its owner only', async () => {
    const none = await meridian(['repository', 'list', '--url', node.url], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('sign in: meridian login, --password or MERIDIAN_PASSWORD');
    const wrong = await cli('login', node.url, '-u', 'owner', '-p', 'wrong');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("refused owner's login (401)");
    const out = await ok('login', node.url, '-u', 'owner', '-p', OWNER_PASSWORD);
    expect(out).toContain(`Login succeeded: owner at ${node.url}`);
    expect(statSync(join(dir, 'login.json')).mode & 0o777).toBe(0o600);
  });

  test('repository list, show-tags, show-manifests in every output format', async () => {
    expect(await ok('repository', 'list')).toBe(
      ['Result', '----------', 'team-a/app', 'team-b/web', ''].join('\n'),
    );
    expect(JSON.parse(await ok('repository', 'list', '-o', 'json'))).toEqual([
      'team-a/app',
      'team-b/web',
    ]);
    expect(await ok('repository', 'list', '--top', '1', '-o', 'tsv')).toBe('team-a/app\n');
    expect(await ok('repository', 'show-tags', 'team-a/app', '-o', 'tsv')).toBe('old\nv1\nv2\n');
    const detail = JSON.parse(
      await ok(
        'repository',
        'show-tags',
        '--repository',
        'team-a/app',
        '--detail',
        '--orderby',
        'time_desc',
        '-o',
        'json',
      ),
    ) as { name: string; digest: string }[];
    // Newest first: `old` was pushed last.
    expect(detail.map((t) => t.name)).toEqual(['old', 'v2', 'v1']);
    expect(detail[1]!.digest).toBe(app.manifest.digest);
    const table = await ok('repository', 'show-manifests', '--repository', 'team-a/app');
    const lines = table.trim().split('\n');
    expect(lines[0]).toMatch(/^DIGEST\s+TAGS\s+PLATFORM\s+SIZE\s+LAST UPDATE\s+REFERRERS$/);
    expect(lines.find((l) => l.startsWith(app.manifest.digest))).toMatch(/v1, v2\s+linux\/amd64/);
    const yaml = parse(await ok('manifest', 'list-metadata', '-n', 'team-a/app', '-o', 'yaml')) as {
      digest: string;
    }[];
    expect(yaml.map((m) => m.digest).sort()).toEqual(
      [app.manifest.digest, other.manifest.digest].sort(),
    );
  });

  test('manifest show-metadata and update-metadata change the lock the registry enforces', async () => {
    const shown = parse(
      await ok('manifest', 'show-metadata', '-n', 'team-a/app:v1', '-o', 'yaml'),
    ) as { digest: string; tags: string[]; architecture: string };
    expect(shown).toMatchObject({
      digest: app.manifest.digest,
      tags: ['v1', 'v2'],
      architecture: 'amd64',
    });
    const locked = JSON.parse(
      await ok(
        'manifest',
        'update-metadata',
        '-n',
        'team-a/app:v1',
        '--write-enabled',
        'false',
        '-o',
        'json',
      ),
    ) as { changeableAttributes: Record<string, boolean> };
    expect(locked.changeableAttributes.writeEnabled).toBe(false);
    // The older `repository show` takes az's --image as well as a positional reference.
    const view = JSON.parse(
      await ok('repository', 'show', '--image', 'team-a/app:v1', '--json'),
    ) as {
      tag: string;
      effective: { writeEnabled: boolean; lockedBy: Record<string, string> };
    };
    expect(view).toMatchObject({ tag: 'v1', effective: { writeEnabled: false } });
    expect((await owner.putManifest('team-a/app', 'v1', other.manifest)).status).toBe(403);
    const nothing = await cli('manifest', 'update-metadata', '-n', 'team-a/app:v1');
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('nothing to change: give --write-enabled');
    const refused = await cli('repository', 'untag', '--image', 'team-a/app:v2');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('403');
    await ok(
      'manifest',
      'update-metadata',
      '-n',
      `team-a/app@${app.manifest.digest}`,
      '--write-enabled',
      'true',
    );
  });

  test('untag and delete; a delete asks for --yes', async () => {
    await ok('repository', 'untag', '--image', 'team-a/app:v2');
    expect(await ok('repository', 'show-tags', 'team-a/app', '-o', 'tsv')).toBe('old\nv1\n');
    const ask = await cli('repository', 'delete', '--image', 'team-a/app:old');
    expect(ask.code).toBe(1);
    expect(ask.stderr).toContain(
      `this deletes manifest ${other.manifest.digest} and every tag on it: add --yes`,
    );
    await ok('repository', 'delete', '--image', 'team-a/app:old', '--yes');
    expect(await ok('repository', 'show-tags', 'team-a/app', '-o', 'tsv')).toBe('v1\n');
    await ok('repository', 'delete', '--repository', 'team-b/web', '--yes');
    expect(await ok('repository', 'list', '-o', 'tsv')).toBe('team-a/app\n');
    const gone = await cli('repository', 'show-tags', 'team-b/web');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('404 repository name not known to registry: team-b/web');
  });

  test('--version, help without empty defaults, unknown MERIDIAN_* variables named', async () => {
    expect((await ok('--version')).trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await ok('replication', 'reconcile', '--help');
    expect(help).toContain('--region <name>');
    expect(help).not.toContain('(default: [])');
    const typo = await meridian(['--version'], { ...env, MERIDIAN_AUTH_ENABLE: 'true' });
    expect(typo.stderr).toContain(
      'environment variable MERIDIAN_AUTH_ENABLE is not a Meridian setting and is ignored (did you mean MERIDIAN_AUTH_ENABLED?)',
    );
    const logout = await ok('logout');
    expect(logout).toBe('Removed the saved login\n');
  });
});
