/**
 * `meridian webhook …` (issue 14): the built CLI as a client of a node's admin API, against a
 * real node and a real receiver on loopback.
 */
import { existsSync } from 'node:fs';
import { AuthedClient, basic } from './helpers/auth-node';
import { CLI, meridian as runCli } from './helpers/cli';
import { startCluster, type TestCluster } from './helpers/cluster';
import { image } from './helpers/images';
import { waitFor } from './helpers/wait';
import { WebhookReceiver } from './helpers/webhook-receiver';

const OWNER = 'cli-webhooks-owner-pw';

const meridian = (args: string[]) => runCli(args, { MERIDIAN_PASSWORD: OWNER });

describe('meridian webhook (a client of the node API)', () => {
  let c: TestCluster;
  let receiver: WebhookReceiver;
  const run = async (...args: string[]) => {
    const r = await meridian(['webhook', ...args, '--url', c.primary.url]);
    if (r.code !== 0) throw new Error(`meridian webhook ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout || 'null') as Record<string, unknown>;
  };

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
    c = await startCluster({
      regions: ['eastus'],
      auth: {},
      ownerPassword: OWNER,
      webhooks: { allowPrivateTargets: ['loopback'] },
    });
    receiver = await new WebhookReceiver().start();
  });
  afterAll(async () => {
    await receiver?.close();
    await c?.close();
  });

  it('create, show, list, ping, list-events, update, redeliver, delete', async () => {
    const made = await run(
      'create',
      'deploy',
      '--uri',
      receiver.url,
      '--actions',
      'push,tag_delete',
      '--scope',
      'apps/*:*',
      '--header',
      'X-Token=abc123',
    );
    expect(made).toMatchObject({
      name: 'deploy',
      actions: ['push', 'tag_delete'],
      scope: 'apps/*:*',
    });
    receiver.secret = made.secret as string;

    const shown = await run('show', 'deploy');
    expect(shown).toMatchObject({
      url: expect.stringMatching(/\/\*\*\*$/) as unknown,
      headers: { 'X-Token': '***' },
    });
    expect(await run('show', 'deploy', '--config')).toEqual({
      url: receiver.url,
      headers: { 'X-Token': 'abc123' },
    });
    expect(((await run('list')).webhooks as { name: string }[]).map((w) => w.name)).toEqual([
      'deploy',
    ]);

    expect(await run('ping', 'deploy')).toMatchObject({ delivered: true, status: 200 });
    expect(receiver.of('ping')[0]!.signed).toBe(true);

    const img = image();
    const client = new AuthedClient(c.primary.url, basic('owner', OWNER));
    await client.pushImage('apps/web', 'v1', img.blobs, img.manifest);
    await waitFor(async () => receiver.of('push').length === 1, 'the push');
    expect(receiver.of('push')[0]!.headers['x-token']).toBe('abc123');

    type Listed = { events: { id: string; action: string; state: string }[] };
    const listed = (await run('list-events', 'deploy')) as unknown as Listed;
    expect(listed.events.map((e) => [e.action, e.state])).toEqual([
      ['push', 'delivered'],
      ['ping', 'delivered'],
    ]);

    // A rotation shows the new secret once; deliveries are signed with both until the next.
    const rotated = await run('update', 'deploy', '--rotate-secret');
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(made.secret);
    const push = listed.events[0]!;
    expect(await run('redeliver', 'deploy', push.id)).toEqual({ id: push.id, state: 'pending' });
    await waitFor(async () => receiver.of('push').length === 2, 'the redelivery');
    const again = receiver.of('push')[1]!;
    expect(again.signed).toBe(true); // with the old secret, still listed second
    expect(String(again.headers['webhook-signature']).split(' ')).toHaveLength(2);

    await run('delete', 'deploy');
    const gone = await meridian(['webhook', 'show', 'deploy', '--url', c.primary.url]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/404: webhook deploy does not exist/);
  });
});
