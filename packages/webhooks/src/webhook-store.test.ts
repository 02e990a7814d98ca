import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type ObjectStore } from '@meridian/storage';
import { createWebhook } from './definition';
import { WebhookStore } from './webhook-store';

describe('WebhookStore (definitions in the object store)', () => {
  let dir: string;
  let store: ObjectStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-webhooks-'));
    store = await openStore(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps each webhook under _webhooks/<name>; another node sees it after the TTL', async () => {
    const a = new WebhookStore(store, { ttlMs: 60_000 });
    const b = new WebhookStore(store, { ttlMs: 0 });
    expect(await a.all()).toEqual([]);
    const w = createWebhook({ name: 'zeta', url: 'https://h.example/' }, []);
    await a.put(w);
    await a.put(createWebhook({ name: 'alpha', url: 'https://h.example/' }, []));
    expect((await a.all()).map((x) => x.name)).toEqual(['alpha', 'zeta']);
    expect(await b.get('zeta')).toEqual(w);
    expect((await store.head('_webhooks/zeta')).size).toBeGreaterThan(0);
    await b.delete('zeta');
    expect((await b.all()).map((x) => x.name)).toEqual(['alpha']);
    // `a` trusts its cache until the TTL (a write through `a` would refresh it).
    expect((await a.all()).map((x) => x.name)).toEqual(['alpha', 'zeta']);
  });
});
