/**
 * The owner's first password and its recovery (issue 10 §7), with `meridian serve` in-process
 * on a real directory: a start that fails before serving creates no owner (so the next start
 * prints the generated password), MERIDIAN_OWNER_PASSWORD on an existing store is reported as
 * ignored, and `meridian admin reset-owner --storage DIR` gives access back without a login.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningNode } from '@meridian/registry';
import { resetOwnerCommand } from '../../packages/cli/src/admin-cmd';
import { loadConfig, NodeConfigSchema } from '../../packages/cli/src/config';
import { serve } from '../../packages/cli/src/serve';
import { AuthedClient, basic } from '../helpers/auth-node';
import { waitFor } from '../helpers/wait';

const GENERATED = /created the Owner identity "owner" with password (\S+)/;

describe('auth: the owner’s first password and its recovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-owner-'));
  let stderr: string[] = [];
  let node: RunningNode | undefined;
  let blocker: Server | undefined;
  const savedEnv = process.env.MERIDIAN_OWNER_PASSWORD;

  const config = (listen: string) =>
    loadConfig(NodeConfigSchema, {
      env: {},
      checkRegion: false,
      overrides: { listen, storage: dir, 'log.level': 'silent', 'auth.pollIntervalMs': 200 },
    });
  const status = async (password: string, path = '/v2/') =>
    (await new AuthedClient(node!.url, basic('owner', password)).get(path)).status;

  beforeEach(() => {
    stderr = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(chunk.toString());
      return true;
    });
    delete process.env.MERIDIAN_OWNER_PASSWORD;
  });
  afterEach(() => {
    jest.restoreAllMocks();
    if (savedEnv === undefined) delete process.env.MERIDIAN_OWNER_PASSWORD;
    else process.env.MERIDIAN_OWNER_PASSWORD = savedEnv;
  });
  afterAll(async () => {
    await node?.close();
    blocker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates no owner when the first start fails; the next start prints a working password', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    await expect(serve(config(`127.0.0.1:${port}`))).rejects.toThrow(/EADDRINUSE|in use/);
    blocker.close();
    expect(stderr.join('')).not.toMatch(GENERATED); // a password for a node that never served
    stderr = [];

    node = await serve(config('127.0.0.1:0'));
    const printed = GENERATED.exec(stderr.join(''));
    expect(printed).not.toBeNull();
    expect(await status(printed![1]!)).toBe(200);
    await node.close();
    node = undefined;
  });

  it('says so when MERIDIAN_OWNER_PASSWORD is set on a store that already has its owner', async () => {
    node = await serve(config('127.0.0.1:0'), { ownerPassword: 'not-the-owners-password' });
    const out = stderr.join('');
    expect(out).toMatch(/MERIDIAN_OWNER_PASSWORD is set but ignored/);
    expect(out).toMatch(/meridian admin reset-owner/);
    expect(out).not.toContain('not-the-owners-password');
    expect(await status('not-the-owners-password')).toBe(401);
  });

  it('reset-owner gives a disabled, demoted owner with a lost password its access back', async () => {
    // Another Owner disables `owner` and takes away its role; its password is lost too.
    const spare = 'spare-owner-password-1';
    const owner = await resetOwnerForTest(); // a known starting point
    await waitFor(async () => (await status(owner)) === 200, 'the reset password to work');
    const asOwner = new AuthedClient(node!.url, basic('owner', owner));
    const json = { 'Content-Type': 'application/json' };
    expect(
      (
        await asOwner.post('/meridian/v1/admin/identities', {
          headers: json,
          body: JSON.stringify({
            kind: 'user',
            name: 'spare',
            password: spare,
            roles: [{ role: 'Owner', scope: '*' }],
          }),
        })
      ).status,
    ).toBe(201);
    const asSpare = new AuthedClient(node!.url, basic('spare', spare));
    const demote = '/meridian/v1/admin/identities/owner/roles?role=Owner&scope=*';
    expect((await asSpare.request('DELETE', demote)).status).toBe(200);
    expect((await asSpare.post('/meridian/v1/admin/identities/owner/disable')).status).toBe(200);
    await waitFor(async () => (await status(owner)) === 401, 'owner to be disabled');

    process.env.MERIDIAN_OWNER_PASSWORD = 'recovered-owner-password';
    const out = await resetOwnerCommand({ storage: dir });
    expect(out).not.toContain('recovered-owner-password');
    await waitFor(
      async () => (await status('recovered-owner-password')) === 200,
      'the recovered password to work',
    );
    expect(await status('recovered-owner-password', '/meridian/v1/admin/identities')).toBe(200);
    expect(await status(owner)).toBe(401);
  });

  /** Runs reset-owner without MERIDIAN_OWNER_PASSWORD; returns the password it printed. */
  async function resetOwnerForTest(): Promise<string> {
    const out = await resetOwnerCommand({ storage: dir });
    const m = /new password (\S+)/.exec(out);
    if (!m) throw new Error('reset-owner printed no password');
    return m[1]!;
  }
});
