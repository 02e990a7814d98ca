import { attachWebhooks, regionWait } from './attach';
import { createWebhook, type Webhook } from './definition';
import type { Notification, WebhookEvent } from './payload';
import type { Enqueue, RegionWait, WebhookQueue } from './webhook-queue';
import type { WebhookStore } from './webhook-store';

const regions = ['eastus', 'westeurope'];
const hook = (fields: Record<string, unknown>): Webhook =>
  createWebhook({ name: 'h', url: 'https://h.example/', ...fields }, regions);

const event = (fields: Partial<WebhookEvent>): WebhookEvent => ({
  type: 'manifestPut',
  repository: 'team/app',
  digest: 'sha256:' + 'b'.repeat(64),
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  size: 10,
  tag: 'v1',
  sequence: 1,
  region: 'eastus',
  time: new Date(0).toISOString(),
  actor: { kind: 'user', name: 'alice' },
  ...fields,
});

/** Attaches to a fake event source and returns what each event queued. */
async function queued(hooks: Webhook[], events: WebhookEvent[]) {
  const calls: { hook: string; n: Notification; wait?: RegionWait; sequence?: number }[] = [];
  let deliver: ((e: WebhookEvent) => Promise<void>) | undefined;
  await attachWebhooks(
    {
      events: {
        attach: async (sub) => {
          deliver = sub.deliver;
          return async () => {};
        },
      },
    },
    {
      queue: {
        enqueueAll: async (items: Enqueue[]) => {
          for (const { hook: h, n, wait, sequence } of items)
            calls.push({ hook: h.name, n, wait, sequence });
          return items.map(() => 'id');
        },
      } as unknown as WebhookQueue,
      store: { all: async () => hooks } as unknown as WebhookStore,
      host: 'registry.example.com',
      region: 'eastus',
      log: undefined as never,
    },
  );
  for (const e of events) await deliver!(e);
  return calls;
}

describe('attachWebhooks', () => {
  it('queues one delivery per matching enabled webhook and action', async () => {
    const calls = await queued(
      [
        hook({ name: 'all', actions: ['push', 'delete', 'tag_delete'] }),
        hook({ name: 'scoped', scope: 'other/**:*' }),
        hook({ name: 'off', status: 'disabled' }),
        hook({ name: 'geo', actions: ['push', 'replicated'] }),
      ],
      [
        event({}),
        event({ type: 'tagMoved', sequence: 2 }),
        event({ type: 'blobCommitted', sequence: 3 }),
        event({ type: 'tagDeleted', sequence: 4, digest: undefined }),
      ],
    );
    expect(calls.map((c) => [c.hook, c.n.action, c.sequence])).toEqual([
      ['all', 'push', 1],
      ['geo', 'push', 1],
      ['geo', 'replicated', undefined],
      ['all', 'tag_delete', 4],
    ]);
    expect(calls[0]!.n.target.tag).toBe('v1');
    expect(calls[0]!.n.request.host).toBe('registry.example.com');
  });

  it('waits for the webhook’s region, or every region for replicated', () => {
    const e = event({});
    expect(regionWait(hook({}), 'push', e, 'eastus')).toBeUndefined();
    expect(regionWait(hook({ location: 'eastus' }), 'push', e, 'eastus')).toBeUndefined();
    expect(regionWait(hook({ location: 'westeurope' }), 'push', e, 'eastus')).toEqual({
      regions: ['westeurope'],
      repository: 'team/app',
      reference: 'v1',
      until: 'present',
    });
    expect(regionWait(hook({}), 'replicated', e, 'eastus')).toMatchObject({ regions: 'all' });
    expect(regionWait(hook({ regions: ['westeurope'] }), 'replicated', e, 'eastus')).toMatchObject({
      regions: ['westeurope'],
    });
    const del = event({ type: 'manifestDeleted', tag: undefined });
    expect(regionWait(hook({ location: 'westeurope' }), 'delete', del, 'eastus')).toMatchObject({
      reference: del.digest,
      until: 'absent',
    });
  });
});
