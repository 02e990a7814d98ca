import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, parseDigest, type OciError } from '@meridian/oci';
import { Layout, RepositoryLayout, openStore, type ObjectStore } from '@meridian/storage';
import type { RegistryEvents } from './events';
import { ManifestStore } from './manifest-store';
import { MetadataCache } from './metadata-cache';
import { TagStore } from './tag-store';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface Emitted {
  type: string;
  repository: string;
  digest?: string;
  tag?: string;
}

describe('ManifestStore over the fs driver', () => {
  let dir: string;
  let store: ObjectStore;
  let layout: RepositoryLayout;
  let manifests: ManifestStore;
  let tags: TagStore;
  let emitted: Emitted[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-manifests-'));
    store = await openStore(dir);
    layout = new RepositoryLayout(store);
    emitted = [];
    // Only what the stores call: the event bus itself is tested on its own.
    const events = {
      emit: (e: Emitted) => {
        emitted.push(e);
        return Promise.resolve();
      },
    } as unknown as RegistryEvents;
    // No caching: every read below comes from storage.
    const cache = new MetadataCache({ ttlMs: 0 });
    tags = new TagStore(store, cache, events);
    manifests = new ManifestStore(store, tags, cache, events);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A blob pushed into `repo` (bytes and layer link). */
  async function blob(repo: string, content: string) {
    const bytes = Buffer.from(content);
    const d = parseDigest(digestOf(bytes));
    await store.put(Layout.blobData(d), bytes);
    await store.put(Layout.layerLink(repo, d), Buffer.from('{}'));
    return { digest: d.value, size: bytes.length };
  }

  async function imageBytes(repo: string, name: string, extra: object = {}, pushBlobs = true) {
    const config = pushBlobs
      ? await blob(repo, `config ${name}`)
      : { digest: digestOf(`config ${name}`), size: 1 };
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [],
        ...extra,
      }),
    );
  }

  const code = async (p: Promise<unknown>) =>
    p.then(
      () => 'resolved',
      (err: OciError) => err.code,
    );

  it('puts a manifest by tag and serves it by tag and by digest', async () => {
    const bytes = await imageBytes('app', 'one');
    const { digest } = await manifests.put('app', 'latest', bytes, OCI_MANIFEST);
    expect(digest).toBe(digestOf(bytes));

    for (const ref of ['latest', digest]) {
      const got = await manifests.get('app', ref);
      expect(got.bytes.equals(bytes)).toBe(true);
      expect(got).toMatchObject({ digest, mediaType: OCI_MANIFEST, size: bytes.length });
    }
    expect(await tags.list('app')).toEqual({ tags: ['latest'], more: false });
    expect(emitted.map((e) => e.type)).toEqual(['manifestPut', 'tagMoved']);
    expect(await code(manifests.get('other', digest))).toBe('MANIFEST_UNKNOWN');
    expect(await code(manifests.get('app', 'nope'))).toBe('MANIFEST_UNKNOWN');
  });

  it('refuses a manifest whose blobs the repository does not hold, and stores nothing', async () => {
    const bytes = await imageBytes('app', 'orphan', {}, false);
    expect(await code(manifests.put('app', 'v1', bytes, OCI_MANIFEST))).toBe(
      'MANIFEST_BLOB_UNKNOWN',
    );
    const d = parseDigest(digestOf(bytes));
    expect(await layout.hasBlob(d)).toBe(false);
    expect(await layout.readTag('app', 'v1')).toBeUndefined();
    expect(emitted).toEqual([]);
  });

  it('refuses a digest reference that does not match the bytes', async () => {
    const bytes = await imageBytes('app', 'x');
    expect(await code(manifests.put('app', digestOf('other'), bytes, OCI_MANIFEST))).toBe(
      'DIGEST_INVALID',
    );
  });

  it('stores an index only once its child manifests are in the repository', async () => {
    const child = await imageBytes('app', 'amd64');
    const childDigest = digestOf(child);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: childDigest, size: child.length }],
      }),
    );
    expect(await code(manifests.put('app', 'multi', index, OCI_INDEX))).toBe(
      'MANIFEST_BLOB_UNKNOWN',
    );
    await manifests.put('app', childDigest, child, OCI_MANIFEST);
    const { digest } = await manifests.put('app', 'multi', index, OCI_INDEX);
    expect((await manifests.resolve('app', 'multi')).digest).toBe(digest);
    expect((await layout.listRevisions('app')).sort()).toEqual([childDigest, digest].sort());
  });

  it('indexes a manifest with a subject as a referrer, filtered by artifact type', async () => {
    const subject = await imageBytes('app', 'signed');
    const subjectDigest = (await manifests.put('app', 'v1', subject, OCI_MANIFEST)).digest;
    const sig = await imageBytes('app', 'sig', {
      artifactType: 'application/vnd.example.sig',
      subject: { mediaType: OCI_MANIFEST, digest: subjectDigest, size: subject.length },
    });
    const put = await manifests.put('app', digestOf(sig), sig, OCI_MANIFEST);
    expect(put.subject).toBe(subjectDigest);

    expect(await manifests.referrers('app', subjectDigest)).toEqual([
      {
        mediaType: OCI_MANIFEST,
        digest: put.digest,
        size: sig.length,
        artifactType: 'application/vnd.example.sig',
      },
    ]);
    expect(await manifests.referrers('app', subjectDigest, 'application/other')).toEqual([]);

    await manifests.delete('app', put.digest);
    expect(await manifests.referrers('app', subjectDigest)).toEqual([]);
  });

  it('deletes a tag alone, or a manifest with every tag pointing at it', async () => {
    const bytes = await imageBytes('app', 'del');
    const { digest } = await manifests.put('app', 'a', bytes, OCI_MANIFEST);
    await manifests.put('app', 'b', bytes, OCI_MANIFEST);
    const other = await imageBytes('app', 'keep');
    await manifests.put('app', 'c', other, OCI_MANIFEST);

    await manifests.delete('app', 'a');
    expect((await tags.list('app')).tags).toEqual(['b', 'c']);
    expect((await manifests.get('app', digest)).digest).toBe(digest);
    expect(await code(manifests.delete('app', 'a'))).toBe('MANIFEST_UNKNOWN');

    emitted = [];
    await manifests.delete('app', digest);
    expect(await code(manifests.get('app', digest))).toBe('MANIFEST_UNKNOWN');
    expect((await tags.list('app')).tags).toEqual(['c']);
    expect(emitted.map((e) => e.type)).toEqual(['manifestDeleted', 'tagDeleted']);
    // The content stays: another repository may link it.
    expect(await layout.hasBlob(parseDigest(digest))).toBe(true);
    expect(await code(manifests.delete('app', digest))).toBe('MANIFEST_UNKNOWN');
  });

  it('answers NAME_UNKNOWN for the tags of a repository that does not exist', async () => {
    expect(await code(tags.list('ghost'))).toBe('NAME_UNKNOWN');
  });
});
