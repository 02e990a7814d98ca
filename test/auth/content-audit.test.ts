/**
 * Content changes reach the audit log through the domain events (issue 11, ADR 0010): a node
 * started by `meridian serve` (in-process) audits a push, a tag move and a delete with the
 * identity that made them, next to the logins and admin changes `AuthService` audits itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningNode } from '@meridian/registry';
import { loadConfig, NodeConfigSchema } from '../../packages/cli/src/config';
import { serve } from '../../packages/cli/src/serve';
import { AuthedClient, basic, OWNER_PASSWORD } from '../helpers/auth-node';
import { image } from '../helpers/images';
import { waitFor } from '../helpers/wait';

interface Audited {
  actor: string;
  actorKind: string;
  action: string;
  target?: string;
  address?: string;
  region: string;
  detail?: Record<string, unknown>;
}

describe('the audit log subscribes to content changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-content-audit-'));
  let node: RunningNode;
  let owner: AuthedClient;

  beforeAll(async () => {
    const config = loadConfig(NodeConfigSchema, {
      env: {},
      checkRegion: false,
      overrides: {
        listen: '127.0.0.1:0',
        storage: join(dir, 'store'),
        'log.level': 'silent',
        'auth.pollIntervalMs': 200,
      },
    });
    node = await serve(config, { ownerPassword: OWNER_PASSWORD });
    owner = new AuthedClient(node.url, basic('owner', OWNER_PASSWORD));
  });
  afterAll(async () => {
    await node?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const audited = async (action: string): Promise<Audited[]> => {
    const res = await owner.get('/meridian/v1/admin/audit', { query: { action, limit: '1000' } });
    expect(res.status).toBe(200);
    return res.json<{ events: Audited[] }>().events;
  };

  it('records a push, a tag move and a delete with who made them', async () => {
    const img = image();
    await owner.pushImage('audit/app', 'v1', img.blobs, img.manifest);
    const del = await owner.request('DELETE', '/v2/audit/app/manifests/v1');
    expect(del.status).toBe(202);

    await waitFor(async () => (await audited('tag')).length === 2, 'the tag move and delete');
    const tags = await audited('tag');
    expect(tags.map((e) => [e.action, e.target])).toEqual([
      ['tag.delete', 'audit/app:v1'],
      ['tag.move', 'audit/app:v1'],
    ]);
    expect(tags[1]).toMatchObject({
      actor: 'owner',
      actorKind: 'user',
      address: '127.0.0.1',
      detail: { repository: 'audit/app', digest: img.manifest.digest, tag: 'v1' },
    });
    expect(typeof tags[1]!.detail?.requestId).toBe('string');

    const manifests = await audited('manifest');
    expect(manifests.map((e) => [e.action, e.target])).toEqual([
      ['manifest.push', `audit/app@${img.manifest.digest}`],
    ]);
    const blobs = await audited('blob.push');
    expect(blobs.map((e) => e.target).sort()).toEqual(
      img.blobs.map((b) => `audit/app@${b.digest}`).sort(),
    );
    // Logins are still audited by the auth service, in the same log.
    expect((await audited('login')).some((e) => e.actor === 'owner')).toBe(true);
  });
});
