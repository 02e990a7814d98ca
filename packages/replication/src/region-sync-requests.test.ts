import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, parseDigest, parseManifest, type Digest } from '@meridian/oci';
import {
  Layout,
  RepositoryLayout,
  manifestPlan,
  openStore,
  putInOrder,
  tagEntry,
  type ObjectStore,
} from '@meridian/storage';
import { RegionSync } from './region-sync';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** The primary's store, counting every call a sync job makes to it (a WAN round trip each). */
function counting(store: ObjectStore, calls: string[]): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'close') return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/**
 * How many requests a sync job makes to the primary's store (issue 18): across a WAN each is a
 * round trip, so a burst's lag is their count times the latency. What a region already holds
 * must cost one request, and an image no more than one per object plus its copies.
 */
describe('RegionSync requests to the primary', () => {
  let dir: string;
  let primary: ObjectStore;
  let region: ObjectStore;
  let calls: string[];
  let sync: RegionSync;
  const repo = 'team/app';

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-sync-requests-'));
    primary = await openStore(join(dir, 'primary'));
    region = await openStore(join(dir, 'region'));
    calls = [];
    sync = new RegionSync('west', counting(primary, calls), region);
  });
  afterEach(async () => {
    await primary.close();
    await region.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function blob(content: string): Promise<{ digest: string; size: number; d: Digest }> {
    const bytes = Buffer.from(content);
    const d = parseDigest(digestOf(bytes));
    await primary.put(Layout.blobData(d), bytes);
    await primary.put(Layout.layerLink(repo, d), Buffer.from(''));
    return { digest: d.value, size: bytes.length, d };
  }

  /** An image (config + layer) and tag `v1` on the primary, as a push leaves them. */
  async function image(): Promise<{ blobs: Digest[]; manifest: Digest }> {
    const config = await blob('{"config":1}');
    const layer = await blob('a layer');
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: config.digest,
          size: config.size,
        },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: 7 },
        ],
      }),
    );
    const d = parseDigest(digestOf(bytes));
    const parsed = parseManifest(bytes, OCI_MANIFEST);
    const revision = { digest: d.value, mediaType: OCI_MANIFEST, size: bytes.length };
    await putInOrder(
      primary,
      new RepositoryLayout(primary).manifestWrites(manifestPlan(repo, d, parsed), {
        bytes,
        revision,
        parsed,
        contentStored: false,
      }),
    );
    const e = tagEntry(repo, 'v1', { digest: d.value, seq: 1, updatedAt: 'now' });
    await primary.put(e.key, e.body);
    return { blobs: [config.d, layer.d], manifest: d };
  }

  it('applies an image (its blob, manifest and tag jobs) in 7 requests', async () => {
    const img = await image();
    for (const b of img.blobs)
      await sync.apply({ kind: 'blob', repository: repo, digest: b.value });
    await sync.apply({ kind: 'manifest', repository: repo, digest: img.manifest.value });
    await sync.apply({ kind: 'tag', repository: repo, tag: 'v1' });
    // Per new blob: its link (existence and bytes) and its size; the manifest: revision and bytes
    // at once; the tag: its record (before issue 18, jobs asked one question per round trip).
    expect(calls).toHaveLength(7);
    const layout = new RepositoryLayout(region);
    expect((await layout.readTag(repo, 'v1'))?.digest).toBe(img.manifest.value);
    for (const b of img.blobs) expect(await layout.hasLayer(repo, b)).toBe(true);
  });

  it('costs one request for a blob the region already holds, and for a tag whose manifest is here', async () => {
    const img = await image();
    await sync.apply({ kind: 'tag', repository: repo, tag: 'v1' });
    calls.length = 0;
    await sync.apply({ kind: 'blob', repository: repo, digest: img.blobs[1]!.value });
    expect(calls).toHaveLength(1);
    calls.length = 0;
    // The tag moves (a new seq) to the same manifest: the manifest is complete here already.
    const e = tagEntry(repo, 'v1', { digest: img.manifest.value, seq: 2, updatedAt: 'later' });
    await primary.put(e.key, e.body);
    await sync.apply({ kind: 'tag', repository: repo, tag: 'v1' });
    expect(calls).toHaveLength(1);
    expect((await new RepositoryLayout(region).readTag(repo, 'v1'))?.seq).toBe(2);
  });
});
