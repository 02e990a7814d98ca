import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, parseDigest, parseManifest, type Digest } from '@meridian/oci';
import {
  Layout,
  RepositoryLayout,
  manifestPlan,
  openStore,
  parseKey,
  putInOrder,
  tagEntry,
  type ObjectStore,
} from '@meridian/storage';
import { localMutex } from './local-mutex';
import { RegionSync } from './region-sync';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Writes a repository's state on a store the way a push does (blobs, manifests, tags). */
class Pusher {
  private seq = 0;
  readonly layout: RepositoryLayout;
  constructor(readonly store: ObjectStore) {
    this.layout = new RepositoryLayout(store);
  }

  async blob(repo: string, content: string): Promise<{ digest: string; size: number }> {
    const bytes = Buffer.from(content);
    const d = parseDigest(digestOf(bytes));
    await this.store.put(Layout.blobData(d), bytes);
    await this.store.put(Layout.layerLink(repo, d), Buffer.from(''));
    return { digest: d.value, size: bytes.length };
  }

  async manifest(repo: string, body: object, mediaType: string): Promise<Digest> {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, ...body }));
    const digest = parseDigest(digestOf(bytes));
    const parsed = parseManifest(bytes, mediaType);
    const plan = manifestPlan(repo, digest, parsed);
    const revision = { digest: digest.value, mediaType, size: bytes.length };
    await putInOrder(
      this.store,
      this.layout.manifestWrites(plan, { bytes, revision, parsed, contentStored: false }),
    );
    return digest;
  }

  async image(repo: string, name: string): Promise<Digest> {
    const config = await this.blob(repo, `{"config":"${name}"}`);
    const layer = await this.blob(repo, `layer of ${name}`);
    return this.manifest(
      repo,
      {
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      },
      OCI_MANIFEST,
    );
  }

  async tag(repo: string, tag: string, d: Digest, seq = ++this.seq): Promise<void> {
    const e = tagEntry(repo, tag, { digest: d.value, seq, updatedAt: 'now' });
    await this.store.put(e.key, e.body);
  }
}

/** The keys a store made visible, in order (whatever write path the copy took). */
function recording(store: ObjectStore, visible: string[]): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const f = v as (...a: unknown[]) => unknown;
      if (prop === 'put' || prop === 'putChecked')
        return async (key: string, ...rest: unknown[]) => {
          const r = await f.apply(target, [key, ...rest]);
          visible.push(key);
          return r;
        };
      if (prop === 'copyFrom')
        return async (...a: unknown[]) => {
          const r = await f.apply(target, a);
          if (r) visible.push(a[2] as string);
          return r;
        };
      return f.bind(target);
    },
  });
}

describe('RegionSync between two fs stores', () => {
  let dir: string;
  let primary: ObjectStore;
  let target: ObjectStore;
  let visible: string[];
  let push: Pusher;
  let sync: RegionSync;
  let region: RepositoryLayout;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-sync-'));
    primary = await openStore(join(dir, 'primary'));
    target = await openStore(join(dir, 'westeu'));
    visible = [];
    push = new Pusher(primary);
    sync = new RegionSync('westeu', primary, recording(target, visible));
    region = new RepositoryLayout(target);
  });
  afterEach(async () => {
    await primary.close();
    await target.close();
    // A sync that failed (a blob gone from the primary) rejects while its other copies may
    // still be writing into the region (each finishes on its own, under its blob's lock): an
    // async rm with retries lets them end instead of racing them (ENOTEMPTY).
    await rm(dir, { recursive: true, force: true, maxRetries: 10 });
  });

  it('copies a tagged index in visibility order: blobs, child manifests, manifest, tag', async () => {
    const amd64 = await push.image('app', 'amd64');
    const arm64 = await push.image('app', 'arm64');
    const index = await push.manifest(
      'app',
      {
        manifests: [amd64, arm64].map((d) => ({
          mediaType: OCI_MANIFEST,
          digest: d.value,
          size: 1,
        })),
      },
      OCI_INDEX,
    );
    await push.tag('app', 'latest', index);

    await sync.syncTag('app', 'latest');

    expect(await region.readTag('app', 'latest')).toEqual(
      await push.layout.readTag('app', 'latest'),
    );
    expect(await region.hasRevision('app', index)).toBe(true);
    expect((await region.listLayers('app')).sort()).toEqual(
      (await push.layout.listLayers('app')).sort(),
    );
    const at = (key: string) => {
      const i = visible.indexOf(key);
      expect(i).toBeGreaterThanOrEqual(0);
      return i;
    };
    for (const child of [amd64, arm64]) {
      const bytes = await primary.getBytes(Layout.blobData(child));
      const parsed = parseManifest(bytes, OCI_MANIFEST);
      for (const b of parsed.blobs) {
        const d = parseDigest(b.digest);
        expect(at(Layout.blobData(d))).toBeLessThan(at(Layout.revisionLink('app', child)));
        expect(at(Layout.layerLink('app', d))).toBeLessThan(at(Layout.revisionLink('app', child)));
      }
      expect(at(Layout.revisionLink('app', child))).toBeLessThan(
        at(Layout.revisionLink('app', index)),
      );
    }
    expect(at(Layout.blobData(index))).toBeLessThan(at(Layout.revisionLink('app', index)));
    expect(at(Layout.revisionLink('app', index))).toBeLessThan(
      at(Layout.tagCurrent('app', 'latest')),
    );
    expect(visible.at(-1)).toBe(Layout.tagCurrent('app', 'latest'));
  });

  it('never shows a tag whose blob is missing from the primary', async () => {
    const m = await push.image('app', 'broken');
    await push.tag('app', 'v1', m);
    const { blobs } = parseManifest(await primary.getBytes(Layout.blobData(m)), OCI_MANIFEST);
    await primary.delete(Layout.blobData(parseDigest(blobs[0]!.digest)));

    await expect(sync.syncTag('app', 'v1')).rejects.toThrow(/gone from the primary/);
    expect(await region.readTag('app', 'v1')).toBeUndefined();
    expect(await region.hasRevision('app', m)).toBe(false);
  });

  it('copies a referrer with its subject and removes both when the primary deletes it', async () => {
    const subject = await push.image('app', 'signed');
    const sig = await push.manifest(
      'app',
      {
        artifactType: 'application/vnd.example.sig',
        config: {
          mediaType: 'application/vnd.oci.empty.v1+json',
          ...(await push.blob('app', '{}')),
        },
        layers: [],
        subject: { mediaType: OCI_MANIFEST, digest: subject.value, size: 1 },
      },
      OCI_MANIFEST,
    );
    await sync.apply({ kind: 'manifest', repository: 'app', digest: sig.value });
    expect(await region.listReferrers('app', subject)).toEqual([
      expect.objectContaining({ digest: sig.value, artifactType: 'application/vnd.example.sig' }),
    ]);

    await push.layout.removeManifest('app', sig, subject);
    await sync.apply({ kind: 'manifest', repository: 'app', digest: sig.value });
    expect(await region.listReferrers('app', subject)).toEqual([]);
    expect(await region.hasRevision('app', sig)).toBe(false);
  });

  it('removes a manifest deleted while an earlier job was still copying it (jobs of one manifest run one at a time)', async () => {
    const d = await push.image('app', 'deleted-mid-copy');
    // The first job's copy of the image's first blob is held until the delete's job has run.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const copying = new Promise<void>((r) => (started = r));
    const slow = new Proxy(target, {
      get(t, prop, receiver) {
        const v = Reflect.get(t, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        const f = v as (...a: unknown[]) => Promise<unknown>;
        if (prop !== 'put' && prop !== 'putChecked' && prop !== 'copyFrom') return f.bind(t);
        return async (...a: unknown[]) => {
          started();
          await held;
          return f.apply(t, a);
        };
      },
    });
    const mutex = localMutex();
    const first = new RegionSync('westeu', primary, slow, mutex);
    const job1 = first.apply({ kind: 'manifest', repository: 'app', digest: d.value });
    await copying;
    await push.layout.removeManifest('app', d, undefined);
    const job2 = new RegionSync('westeu', primary, target, mutex).apply({
      kind: 'manifest',
      repository: 'app',
      digest: d.value,
    });
    await new Promise((r) => setTimeout(r, 50)); // the delete's job waits, it does not finish first
    release();
    await Promise.all([job1, job2]);
    expect(await region.hasRevision('app', d)).toBe(false);
  });

  it('never moves a tag backwards, and deletes it when the primary has none', async () => {
    const one = await push.image('app', 'one');
    const two = await push.image('app', 'two');
    await push.tag('app', 't', two, 10);
    await sync.syncTag('app', 't');
    await push.tag('app', 't', one, 5);
    await sync.syncTag('app', 't');
    expect((await region.readTag('app', 't'))?.digest).toBe(two.value);

    await push.layout.deleteTag('app', 't');
    await sync.syncTag('app', 't');
    expect(await region.readTag('app', 't')).toBeUndefined();
  });

  it('links a blob once its bytes are there, and unlinks it when the primary did', async () => {
    const { digest } = await push.blob('app', 'a layer');
    const d = parseDigest(digest);
    await sync.apply({ kind: 'blob', repository: 'app', digest });
    expect(visible.map((k) => parseKey(k)?.kind)).toEqual(['blob', 'layer']);
    expect(await region.hasLayer('app', d)).toBe(true);

    await primary.delete(Layout.layerLink('app', d));
    await sync.syncBlob('app', d);
    expect(await region.hasLayer('app', d)).toBe(false);
    expect(await region.hasBlob(d)).toBe(true);
  });
});
