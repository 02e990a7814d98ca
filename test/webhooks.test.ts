/**
 * Webhooks (issue 14): a real node (`serve`, auth on, Redis) and real HTTP receivers on
 * loopback. Pushes and deletes arrive signed in ACR's shape; a failing receiver gets the event
 * again; ping, list-events and redeliver work over the admin API.
 */
import { AuthedClient, basic } from './helpers/auth-node';
import { startCluster, type TestCluster } from './helpers/cluster';
import { image } from './helpers/images';
import { waitFor } from './helpers/wait';
import { WebhookReceiver } from './helpers/webhook-receiver';

const OWNER = 'webhooks-owner-password';
const HOOKS = '/meridian/v1/admin/webhooks';

describe('webhooks', () => {
  let c: TestCluster;
  let client: AuthedClient;
  let receiver: WebhookReceiver;

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await client.request(method, path, {
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: res.body.length ? res.json<Record<string, unknown>>() : {} };
  };

  const create = async (name: string, fields: Record<string, unknown>) => {
    const r = await admin('POST', HOOKS, { name, url: receiver.url, ...fields });
    expect(r.status).toBe(201);
    return r.json as { secret: string };
  };

  beforeAll(async () => {
    c = await startCluster({
      regions: ['eastus'],
      auth: {},
      ownerPassword: OWNER,
      webhooks: { allowPrivateTargets: ['loopback'], retryBaseMs: 200 },
    });
    client = new AuthedClient(c.primary.url, basic('owner', OWNER));
    receiver = await new WebhookReceiver().start();
  });
  afterAll(async () => {
    await receiver?.close();
    await c?.close();
  });

  it('delivers a signed push in ACR’s shape, once, and masks the URL on read', async () => {
    const { secret } = await create('ci', {
      actions: ['push', 'tag_delete'],
      scope: 'team/**:*',
      headers: { Authorization: 'Bearer receiver-token' },
    });
    expect(secret).toMatch(/^whsec_/);
    receiver.secret = secret;
    const shown = await admin('GET', `${HOOKS}/ci`);
    expect(shown.json).toMatchObject({ name: 'ci', headers: { Authorization: '***' } });
    expect(JSON.stringify(shown.json)).not.toContain('/hook');
    expect(JSON.stringify(shown.json)).not.toContain(secret);
    expect((await admin('GET', `${HOOKS}/ci/config`)).json).toEqual({
      url: receiver.url,
      headers: { Authorization: 'Bearer receiver-token' },
    });

    const img = image();
    await client.pushImage('team/app', 'v1', img.blobs, img.manifest);
    await client.pushImage('other/app', 'v1', img.blobs, img.manifest); // out of scope
    const [push] = await waitFor(
      async () => receiver.of('push').length > 0 && receiver.of('push'),
      'the push',
    );
    expect(push!.signed).toBe(true);
    expect(push!.headers['authorization']).toBe('Bearer receiver-token');
    expect(push!.headers['content-type']).toBe('application/json');
    const body = push!.json as { id: string; timestamp: string; request: { id: string } };
    expect(Object.keys(body)).toEqual([
      'id',
      'timestamp',
      'action',
      'target',
      'request',
      'actor',
      'region',
    ]);
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(body.timestamp)).toBeGreaterThan(0);
    expect(body.request.id).not.toBe('');
    expect(body).toMatchObject({
      action: 'push',
      target: {
        mediaType: img.manifest.mediaType,
        size: img.manifest.bytes.length,
        digest: img.manifest.digest,
        length: img.manifest.bytes.length,
        repository: 'team/app',
        tag: 'v1',
      },
      request: { host: c.primary.host, method: 'PUT' },
      actor: { kind: 'user', name: 'owner' },
      region: 'eastus',
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.of('push')).toHaveLength(1);

    // The history shows it delivered, with the request and the receiver's answer.
    const events = (await admin('GET', `${HOOKS}/ci/events`)).json.events as Record<
      string,
      unknown
    >[];
    expect(events[0]).toMatchObject({ action: 'push', state: 'delivered', repository: 'team/app' });
    const attempt = (events[0]!.attempts as Record<string, unknown>[])[0]!;
    expect(attempt).toMatchObject({ status: 200, responseBody: 'ok' });
    expect((attempt.requestHeaders as Record<string, string>).authorization).toBe('***');
  });

  it('fires tag_delete with the tag when a tag is deleted', async () => {
    const img = image();
    await client.pushImage('team/del', 'gone', img.blobs, img.manifest);
    const del = await client.delete('/v2/team/del/manifests/gone');
    expect(del.status).toBe(202);
    const [td] = await waitFor(
      async () => receiver.of('tag_delete').length > 0 && receiver.of('tag_delete'),
      'tag_delete',
    );
    expect(td!.signed).toBe(true);
    expect(td!.json).toMatchObject({
      action: 'tag_delete',
      target: { repository: 'team/del', tag: 'gone' },
      request: { method: 'DELETE' },
    });
  });

  it('retries a receiver that answers 500 until it answers 200', async () => {
    receiver.script = [500, 503];
    const before = receiver.of('push').length;
    const img = image();
    await client.pushImage('team/retry', 'v1', img.blobs, img.manifest);
    const pushes = await waitFor(
      async () => receiver.of('push').length >= before + 3 && receiver.of('push').slice(before),
      'three attempts of the push',
    );
    // Every attempt is the same delivery: same id, same body.
    expect(new Set(pushes.map((p) => p.headers['webhook-id'])).size).toBe(1);
    expect(new Set(pushes.map((p) => p.body)).size).toBe(1);
    type Event = { repository: string; state: string; attempts: { status: number }[] };
    const retried = await waitFor(async () => {
      const events = (await admin('GET', `${HOOKS}/ci/events`)).json.events as Event[];
      const e = events.find((x) => x.repository === 'team/retry');
      return e?.state === 'delivered' && e;
    }, 'the delivery to be recorded delivered');
    expect(retried.attempts.map((a) => a.status)).toEqual([500, 503, 200]);
    const metrics = await (await fetch(`${c.primary.url}/metrics`)).text();
    expect(metrics).toMatch(
      /^meridian_webhooks_delivery_attempts_total\{webhook="ci",outcome="retrying"\} [2-9]/m,
    );
    expect(metrics).toMatch(
      /^meridian_webhooks_delivery_attempts_total\{webhook="ci",outcome="delivered"\} [1-9]/m,
    );
  });

  it('ping answers with the receiver’s status; redeliver sends a delivery again', async () => {
    const ping = await admin('POST', `${HOOKS}/ci/ping`);
    expect(ping.status).toBe(200);
    expect(ping.json).toMatchObject({ delivered: true, status: 200 });
    expect(receiver.of('ping')).toHaveLength(1);
    expect(receiver.of('ping')[0]!.signed).toBe(true);

    const events = (await admin('GET', `${HOOKS}/ci/events`)).json.events as {
      id: string;
      action: string;
    }[];
    const push = events.find((e) => e.action === 'push')!;
    const seen = receiver.received.filter((r) => r.headers['webhook-id'] === push.id).length;
    const r = await admin('POST', `${HOOKS}/ci/events/${push.id}/redeliver`);
    expect(r.status).toBe(202);
    await waitFor(
      async () =>
        receiver.received.filter((x) => x.headers['webhook-id'] === push.id).length > seen,
      'the redelivery',
    );
    expect((await admin('POST', `${HOOKS}/ci/events/nope/redeliver`)).status).toBe(404);
  });

  it('refuses targets in private ranges the operator did not allow, and bad definitions', async () => {
    const meta = await admin('POST', HOOKS, { name: 'meta', url: 'http://169.254.169.254/latest' });
    expect(meta.status).toBe(400);
    expect(JSON.stringify(meta.json)).toMatch(/private, loopback or reserved/);
    expect((await admin('POST', HOOKS, { name: 'ci', url: receiver.url })).status).toBe(409);
    expect(
      (await admin('POST', HOOKS, { name: 'bad', url: receiver.url, actions: ['nope'] })).status,
    ).toBe(400);
    expect((await admin('GET', `${HOOKS}/missing`)).status).toBe(404);
    // Only an Owner manages webhooks.
    const anonymous = await new AuthedClient(c.primary.url, undefined).get(HOOKS);
    expect(anonymous.status).toBe(401);
  });

  it('fires lock_changed with the lock’s attributes', async () => {
    await create('locks', { actions: ['lock_changed'], scope: 'team/app:*' });
    const put = await admin('PUT', '/meridian/v1/admin/locks', {
      repository: 'team/app',
      tag: 'v1',
      writeEnabled: false,
    });
    expect(put.status).toBe(200);
    const [lock] = await waitFor(
      async () => receiver.of('lock_changed').length > 0 && receiver.of('lock_changed'),
      'lock_changed',
    );
    expect(lock!.json).toMatchObject({
      action: 'lock_changed',
      target: { repository: 'team/app', tag: 'v1' },
      request: { method: 'PUT' },
      actor: { kind: 'user', name: 'owner' },
      lock: { writeEnabled: false, deleteEnabled: true },
    });
    expect((await admin('DELETE', `${HOOKS}/locks`)).status).toBe(204);
  });

  it('a disabled or deleted webhook fires no more', async () => {
    expect((await admin('PATCH', `${HOOKS}/ci`, { status: 'disabled' })).json).toMatchObject({
      status: 'disabled',
    });
    const before = receiver.received.length;
    const img = image();
    await client.pushImage('team/quiet', 'v1', img.blobs, img.manifest);
    await new Promise((r) => setTimeout(r, 2500)); // past the definitions cache
    expect(receiver.received.length).toBe(before);
    expect((await admin('DELETE', `${HOOKS}/ci`)).status).toBe(204);
    expect(((await admin('GET', HOOKS)).json.webhooks as unknown[]).length).toBe(0);
  });
});
