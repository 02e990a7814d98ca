import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openStore, UnavailableError, type ObjectStore } from '@meridian/storage';
import { AuditLog } from './audit-log';
import { attachContentAudit, contentAuditEvent, type AuditedChange } from './content-audit';

const log = pino({ level: 'silent' });
const digest = `sha256:${'a'.repeat(64)}`;
const owner = { kind: 'user', name: 'owner', address: '10.0.0.7', userAgent: 'docker/27' };

const change = (over: Partial<AuditedChange> & { type: string }): AuditedChange => ({
  repository: 'team/app',
  sequence: 1,
  time: '2026-12-02T10:00:00.000Z',
  actor: owner,
  requestId: 'req-1',
  ...over,
});

/** What a durable subscriber gets from the dispatcher: deliveries, then one flush per run. */
function source() {
  let sub: { deliver: (e: AuditedChange) => void; flush: () => Promise<void> } | undefined;
  return {
    attach: async (s: NonNullable<typeof sub> & { name: string }) => {
      expect(s.name).toBe('audit');
      sub = s;
      return async () => {};
    },
    run: async (events: AuditedChange[]) => {
      for (const e of events) sub!.deliver(e);
      await sub!.flush();
    },
  };
}

describe('content changes in the audit log', () => {
  let dir: string;
  let store: ObjectStore;
  let down = false;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-audit-'));
    const fs = await openStore(dir);
    down = false;
    // A store whose puts can fail, like a region whose S3 endpoint is down.
    store = new Proxy(fs, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'put' && typeof v === 'function')
          return (...args: unknown[]) =>
            down
              ? Promise.reject(new UnavailableError('region down'))
              : (v as (...a: unknown[]) => unknown).apply(target, args);
        return typeof v === 'function' ? (v as () => unknown).bind(target) : v;
      },
    });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names who changed what: actor, action, target, address, request and commit time', () => {
    expect(
      contentAuditEvent(
        change({ type: 'tagMoved', tag: 'v1', digest, sequence: 9, time: '2026-12-01T23:59:59Z' }),
      ),
    ).toEqual({
      at: '2026-12-01T23:59:59Z',
      actor: 'owner',
      actorKind: 'user',
      action: 'tag.move',
      target: 'team/app:v1',
      outcome: 'success',
      address: '10.0.0.7',
      detail: {
        repository: 'team/app',
        sequence: 9,
        digest,
        tag: 'v1',
        requestId: 'req-1',
        userAgent: 'docker/27',
      },
    });
    // A lock change names the tag (or digest) it locks, and what it set.
    expect(
      contentAuditEvent(
        change({ type: 'lockChanged', tag: 'v1', writeEnabled: false, deleteEnabled: true }),
      ),
    ).toMatchObject({
      action: 'lock.change',
      target: 'team/app:v1',
      detail: { tag: 'v1', writeEnabled: false, deleteEnabled: true },
    });
    const byToken = contentAuditEvent(
      change({
        type: 'blobMounted',
        digest,
        from: '',
        actor: { kind: 'token', name: 'ci', token: 'ci' },
      }),
    );
    expect(byToken).toMatchObject({
      actor: 'ci',
      actorKind: 'token',
      action: 'blob.mount',
      target: `team/app@${digest}`,
      detail: { token: 'ci' },
    });
    expect(byToken.detail).not.toHaveProperty('from'); // an automatic mount names no source
    expect(byToken).not.toHaveProperty('address');
    expect(
      contentAuditEvent(
        change({ type: 'manifestDeleted', digest, actor: { kind: 'system', name: 'meridian' } }),
      ),
    ).toMatchObject({ action: 'manifest.delete', actorKind: 'system' });
    // A delete that went to the recycle bin says so, and until when it can be restored.
    expect(
      contentAuditEvent(
        change({ type: 'manifestDeleted', digest, softDeleted: true, expiresAt: '2026-12-09Z' }),
      ),
    ).toMatchObject({
      action: 'manifest.soft_delete',
      actor: 'owner',
      detail: { digest, expiresAt: '2026-12-09Z' },
    });
    // A retention run names its rule and what it removed.
    expect(
      contentAuditEvent(
        change({
          type: 'retentionFinished',
          rule: 'old-builds',
          tags: ['v1'],
          manifests: [digest],
          bytes: 12,
          actor: { kind: 'system', name: 'meridian' },
        }),
      ),
    ).toMatchObject({
      action: 'retention.finished',
      actorKind: 'system',
      target: 'team/app',
      detail: { rule: 'old-builds', tags: ['v1'], manifests: [digest], bytes: 12 },
    });
    // A manifest pushed by a tag is named by its digest (the tag has its own event).
    expect(
      contentAuditEvent(change({ type: 'manifestPut', digest, tag: 'v1', size: 10 })),
    ).toMatchObject({ action: 'manifest.push', target: `team/app@${digest}` });
    // A kind this version does not know is still audited, never dropped.
    expect(contentAuditEvent(change({ type: 'repositoryLocked' }))).toMatchObject({
      action: 'event.repositoryLocked',
      target: 'team/app',
    });
  });

  it('writes each delivered run before it is acknowledged, and queries find it', async () => {
    const audit = new AuditLog({ store, region: 'eastus', log, flushIntervalMs: 60_000 });
    const events = source();
    await attachContentAudit(events, audit);
    const now = Date.now();
    const at = (s: number) => new Date(now - s * 1000).toISOString();
    await events.run([
      change({ type: 'blobCommitted', digest, size: 12, sequence: 1, time: at(3) }),
      change({ type: 'manifestPut', digest, mediaType: 'application/x', sequence: 2, time: at(2) }),
      change({ type: 'tagMoved', tag: 'v1', digest, sequence: 3, time: at(1) }),
    ]);
    // Written by the flush itself (a fresh log over the same store finds them: no buffer).
    const other = new AuditLog({ store, region: 'eastus', log, flushIntervalMs: 60_000 });
    const found = await other.query({ actor: 'owner' });
    expect(found.map((e) => [e.action, e.target, e.region])).toEqual([
      ['tag.move', 'team/app:v1', 'eastus'],
      ['manifest.push', `team/app@${digest}`, 'eastus'],
      ['blob.push', `team/app@${digest}`, 'eastus'],
    ]);
    expect((await other.query({ action: 'manifest' })).map((e) => e.action)).toEqual([
      'manifest.push',
    ]);
    await other.close();
    await audit.close();
  });

  it('fails the flush while the store refuses writes and keeps nothing for the retry', async () => {
    const audit = new AuditLog({ store, region: 'eastus', log, flushIntervalMs: 60_000 });
    const events = source();
    await attachContentAudit(events, audit);
    const e = change({ type: 'tagDeleted', tag: 'old', time: new Date().toISOString() });
    down = true;
    await expect(events.run([e])).rejects.toThrow(/region down/);
    down = false;
    // The dispatcher delivers the run again: audited once, not twice.
    await events.run([e]);
    expect((await audit.query({ action: 'tag' })).map((x) => x.target)).toEqual(['team/app:old']);
    await audit.close();
  });

  it('files events under the day they happened, so a query of one day finds them', async () => {
    const audit = new AuditLog({ store, region: 'eastus', log, flushIntervalMs: 60_000 });
    await audit.append([
      {
        ...contentAuditEvent(change({ type: 'tagMoved', tag: 'a' })),
        at: '2026-11-30T23:59:59.000Z',
      },
      {
        ...contentAuditEvent(change({ type: 'tagMoved', tag: 'b' })),
        at: '2026-12-01T00:00:01.000Z',
      },
    ]);
    const dec1 = await audit.query({
      since: new Date('2026-12-01T00:00:00Z'),
      until: new Date('2026-12-01T12:00:00Z'),
    });
    expect(dec1.map((e) => e.target)).toEqual(['team/app:b']);
    await audit.close();
  });
});
