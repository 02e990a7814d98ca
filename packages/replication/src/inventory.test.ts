import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, parseDigest } from '@meridian/oci';
import { Layout, openStore, tagEntry, type ObjectStore } from '@meridian/storage';
import { repositoryInventory } from './inventory';
import { diff } from './reconciler';

const d = (s: string) => parseDigest(digestOf(s));
const layer = d('layer');
const manifest = d('manifest');
const signature = d('signature');

async function tag(store: ObjectStore, t: string, digest: string, seq: number): Promise<void> {
  const e = tagEntry('app', t, { digest, seq, updatedAt: 'now' });
  await store.put(e.key, e.body);
}

describe('repository inventory and its diff', () => {
  let dir: string;
  let primary: ObjectStore;
  let region: ObjectStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-inventory-'));
    primary = await openStore(join(dir, 'p'));
    region = await openStore(join(dir, 'r'));
  });
  afterEach(async () => {
    await primary.close();
    await region.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads tags by value, revisions, layers and referrers from the layout', async () => {
    await primary.put(Layout.layerLink('app', layer), Buffer.from(''));
    await primary.put(Layout.revisionLink('app', manifest), Buffer.from('{}'));
    await primary.put(Layout.referrer('app', manifest, signature), Buffer.from('{}'));
    await primary.put(Layout.uploadState('u1'), Buffer.from('{}'));
    await tag(primary, 'v1', manifest.value, 7);
    // Another repository whose name extends this one's is not part of it.
    await primary.put(Layout.layerLink('app2', signature), Buffer.from(''));
    // Nor is a repository nested under its name.
    await primary.put(Layout.layerLink('app/sub', signature), Buffer.from(''));
    await primary.put(Layout.tagCurrent('app/sub', 'v2'), Buffer.from('{}'));

    const inv = await repositoryInventory(primary, 'app');
    expect(inv.tags).toEqual(new Map([['v1', `${manifest.value}@7`]]));
    expect(inv.revisions).toEqual(new Set([manifest.value]));
    expect(inv.layers).toEqual(new Set([layer.value]));
    expect(inv.referrers).toEqual(new Set([signature.value]));
  });

  it('names every tag, manifest and blob that differs, in either direction', async () => {
    for (const s of [primary, region]) {
      await s.put(Layout.revisionLink('app', manifest), Buffer.from('{}'));
      await s.put(Layout.revisionLink('app', signature), Buffer.from('{}'));
      await tag(s, 'same', manifest.value, 1);
    }
    await primary.put(Layout.layerLink('app', layer), Buffer.from(''));
    await primary.put(Layout.referrer('app', manifest, signature), Buffer.from('{}'));
    await tag(primary, 'moved', manifest.value, 3);
    await tag(region, 'moved', manifest.value, 2);
    await tag(region, 'stale', manifest.value, 1);
    await region.put(Layout.revisionLink('app', layer), Buffer.from('{}'));

    const drift = diff(
      'app',
      await repositoryInventory(primary, 'app'),
      await repositoryInventory(region, 'app'),
    );
    expect(drift).toEqual(
      expect.arrayContaining([
        { target: { kind: 'tag', repository: 'app', tag: 'moved' } },
        { target: { kind: 'tag', repository: 'app', tag: 'stale' } },
        { target: { kind: 'manifest', repository: 'app', digest: layer.value } },
        { target: { kind: 'blob', repository: 'app', digest: layer.value } },
        {
          target: { kind: 'manifest', repository: 'app', digest: signature.value },
          referrer: true,
        },
      ]),
    );
    expect(drift).toHaveLength(5);
  });

  it('finds nothing to do between equal regions', async () => {
    for (const s of [primary, region]) {
      await s.put(Layout.layerLink('app', layer), Buffer.from(''));
      await tag(s, 'v1', manifest.value, 1);
    }
    expect(
      diff(
        'app',
        await repositoryInventory(primary, 'app'),
        await repositoryInventory(region, 'app'),
      ),
    ).toEqual([]);
  });
});
