import { actionsOf, encode, notificationOf, stableId, type WebhookEvent } from './payload';

const push: WebhookEvent = {
  type: 'manifestPut',
  repository: 'hello-world',
  digest: 'sha256:' + 'a'.repeat(64),
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  size: 524,
  tag: 'v1',
  sequence: 7,
  region: 'eastus',
  time: '2026-12-02T10:00:00.000Z',
  actor: { kind: 'user', name: 'alice', userAgent: 'docker/27' },
  requestId: 'req-1',
};

describe('webhook payloads', () => {
  it('maps events to actions', () => {
    expect(actionsOf('manifestPut')).toEqual(['push', 'replicated']);
    expect(actionsOf('manifestDeleted')).toEqual(['delete']);
    expect(actionsOf('tagDeleted')).toEqual(['tag_delete']);
    expect(actionsOf('lockChanged')).toEqual(['lock_changed']);
    expect(actionsOf('blobCommitted')).toEqual([]);
    expect(actionsOf('retentionFinished')).toEqual(['retention_finished']);
    expect(actionsOf('importFinished')).toEqual(['import_finished']);
    // A delete that went to the recycle bin is still a delete, and also a soft_delete.
    expect(actionsOf({ type: 'manifestDeleted', softDeleted: true })).toEqual([
      'delete',
      'soft_delete',
    ]);
    expect(actionsOf({ type: 'manifestDeleted' })).toEqual(['delete']);
  });

  it('says until when a soft delete can be restored, and what a retention run removed', () => {
    const base = { ...push, mediaType: undefined, size: undefined, tag: undefined };
    const soft = notificationOf(
      { ...base, type: 'manifestDeleted', softDeleted: true, expiresAt: '2026-12-09T10:00:00Z' },
      'soft_delete',
      'h',
    );
    expect(soft).toMatchObject({
      action: 'soft_delete',
      target: { digest: push.digest, repository: 'hello-world' },
      softDelete: { expiresAt: '2026-12-09T10:00:00Z' },
    });
    expect(notificationOf({ ...base, type: 'manifestDeleted' }, 'delete', 'h')).not.toHaveProperty(
      'softDelete',
    );
    const removed = [`sha256:${'b'.repeat(64)}`];
    const ret = notificationOf(
      {
        ...base,
        digest: undefined,
        type: 'retentionFinished',
        rule: 'old-builds',
        tags: ['v1'],
        manifests: removed,
        bytes: 1234,
      },
      'retention_finished',
      'h',
    );
    expect(ret.target).toEqual({ repository: 'hello-world' });
    expect(ret.retention).toEqual({
      rule: 'old-builds',
      tags: ['v1'],
      manifests: removed,
      bytes: 1234,
    });
  });

  it('import_finished names the image and where it came from', () => {
    const e: WebhookEvent = {
      ...push,
      type: 'importFinished',
      mediaType: 'application/vnd.oci.image.index.v1+json',
      size: undefined,
      source: 'docker.io/library/alpine:3.20',
    };
    expect(notificationOf(e, 'import_finished', 'registry.example')).toMatchObject({
      action: 'import_finished',
      target: { repository: 'hello-world', tag: 'v1', digest: push.digest },
      import: { source: 'docker.io/library/alpine:3.20' },
    });
  });

  it("is ACR's push payload, keys in ACR's order, with actor and region added", () => {
    const n = notificationOf(push, 'push', 'registry.example.com');
    const { body, type } = encode(n, 'acr');
    expect(type).toBe('application/json');
    const json = JSON.parse(body) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual([
      'id',
      'timestamp',
      'action',
      'target',
      'request',
      'actor',
      'region',
    ]);
    expect(json).toEqual({
      id: n.id,
      timestamp: '2026-12-02T10:00:00.000Z',
      action: 'push',
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 524,
        digest: push.digest,
        length: 524,
        repository: 'hello-world',
        tag: 'v1',
      },
      request: { id: 'req-1', host: 'registry.example.com', method: 'PUT', useragent: 'docker/27' },
      actor: { kind: 'user', name: 'alice' },
      region: 'eastus',
    });
    expect(Object.keys(json.target as object)).toEqual([
      'mediaType',
      'size',
      'digest',
      'length',
      'repository',
      'tag',
    ]);
  });

  it('ids are stable per event and action, and UUID-shaped', () => {
    const a = notificationOf(push, 'push', 'h').id;
    expect(notificationOf({ ...push }, 'push', 'other-host').id).toBe(a);
    expect(notificationOf(push, 'replicated', 'h').id).not.toBe(a);
    expect(notificationOf({ ...push, sequence: 8 }, 'push', 'h').id).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stableId('x')).toBe(stableId('x'));
  });

  it('tag_delete names the tag; delete by digest has no size', () => {
    const td = notificationOf(
      { ...push, type: 'tagDeleted', digest: undefined, mediaType: undefined, size: undefined },
      'tag_delete',
      'h',
    );
    expect(td.target).toEqual({ repository: 'hello-world', tag: 'v1' });
    expect(td.request.method).toBe('DELETE');
    const del = notificationOf(
      { ...push, type: 'manifestDeleted', tag: undefined, mediaType: undefined, size: 3 },
      'delete',
      'h',
    );
    expect(del.target).toEqual({ digest: push.digest, repository: 'hello-world' });
  });

  it('CloudEvents 1.0 structured and the Distribution envelope', () => {
    const n = notificationOf(push, 'push', 'registry.example.com');
    const ce = encode(n, 'cloudevents');
    expect(ce.type).toBe('application/cloudevents+json');
    expect(JSON.parse(ce.body)).toEqual({
      specversion: '1.0',
      id: n.id,
      source: 'https://registry.example.com/v2/hello-world',
      type: 'io.meridian.registry.push',
      subject: 'hello-world:v1',
      time: n.timestamp,
      datacontenttype: 'application/json',
      data: n,
    });
    const dist = encode(n, 'distribution');
    expect(dist.type).toBe('application/vnd.docker.distribution.events.v1+json');
    const env = JSON.parse(dist.body) as { events: Record<string, unknown>[] };
    expect(env.events).toHaveLength(1);
    expect(env.events[0]).toMatchObject({ id: n.id, action: 'push', actor: { name: 'alice' } });
  });

  it('lock_changed carries the lock’s attributes', () => {
    const n = notificationOf(
      {
        ...push,
        type: 'lockChanged',
        digest: undefined,
        mediaType: undefined,
        size: undefined,
        deleteEnabled: false,
        writeEnabled: false,
        readEnabled: true,
        listEnabled: true,
      },
      'lock_changed',
      'h',
    );
    expect(n.target).toEqual({ repository: 'hello-world', tag: 'v1' });
    expect(n.lock).toEqual({
      deleteEnabled: false,
      writeEnabled: false,
      readEnabled: true,
      listEnabled: true,
    });
    expect(n.request.method).toBe('PUT');
  });
});
