import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, OciError, parseDigest } from '@meridian/oci';
import { Layout, openStore, type ObjectStore } from '@meridian/storage';
import type { RegistryEvents } from './events';
import { ManifestStore } from './manifest-store';
import { MetadataCache } from './metadata-cache';
import { FallbackManifestStore, type MissedObject, type TagFreshness } from './replica';
import { TagStore } from './tag-store';
import type { PrimaryUpstream, UpstreamManifest } from './upstream';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/**
 * A replica's manifest reads over the fs driver, with the primary and the tag watch stood in
 * for: the freshness rule (a tag the primary moved since this region copied it is read from the
 * primary) and the fallback on a miss, with no server.
 */
describe('FallbackManifestStore (a replica)', () => {
  let dir: string;
  let store: ObjectStore;
  let tags: TagStore;
  let manifests: FallbackManifestStore;
  /** Writes into the region the way a push (or replication) does. */
  let writer: ManifestStore;
  /** What the primary holds, by `repo@reference`; `down` makes it unreachable. */
  let primary: Map<string, UpstreamManifest>;
  let down: boolean;
  let primaryReads: string[];
  let missed: MissedObject[];
  /** What the tag watch heard, by `repo:tag`. */
  let announced: Map<string, { seq: number; digest?: string }>;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-replica-'));
    store = await openStore(dir);
    primary = new Map();
    down = false;
    primaryReads = [];
    missed = [];
    announced = new Map();
    const events = { emit: () => Promise.resolve() } as unknown as RegistryEvents;
    const cache = new MetadataCache({ ttlMs: 0 });
    tags = new TagStore(store, cache, events);
    writer = new ManifestStore(store, tags, cache, events);
    const upstream = {
      manifest: async (repository: string, reference: string) => {
        primaryReads.push(`${repository}@${reference}`);
        if (down) throw new OciError('UNAVAILABLE', 'primary unreachable');
        return primary.get(`${repository}@${reference}`);
      },
    } as unknown as PrimaryUpstream;
    const freshness: TagFreshness = {
      latestChange: (repository, tag) => announced.get(`${repository}:${tag}`),
    };
    manifests = new FallbackManifestStore(store, tags, cache, events, {
      region: 'eu',
      primary: upstream,
      freshness,
      onMiss: (o) => missed.push(o),
    });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An image manifest's bytes (no layers). */
  const image = (name: string) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: digestOf(`config ${name}`),
          size: `config ${name}`.length,
        },
        layers: [],
      }),
    );

  /** Puts image `name` as `repo:tag` in this region (config blob first); its digest and seq. */
  async function local(repo: string, tag: string, name: string) {
    const config = Buffer.from(`config ${name}`);
    const d = parseDigest(digestOf(config));
    await store.put(Layout.blobData(d), config);
    await store.put(Layout.layerLink(repo, d), Buffer.from('{}'));
    const { digest } = await writer.put(repo, tag, image(name), OCI_MANIFEST);
    const rec = await tags.get(repo, tag);
    return { digest, seq: rec!.seq };
  }

  function onPrimary(repo: string, reference: string, bytes: Buffer, digest = digestOf(bytes)) {
    primary.set(`${repo}@${reference}`, {
      digest,
      mediaType: OCI_MANIFEST,
      size: bytes.length,
      bytes,
    });
  }

  it('serves a tag from the region when the primary announced nothing newer', async () => {
    const { digest, seq } = await local('app', 'v1', 'one');
    expect((await manifests.get('app', 'v1')).digest).toBe(digest);
    announced.set('app:v1', { seq, digest });
    expect((await manifests.get('app', 'v1')).digest).toBe(digest);
    expect((await manifests.resolve('app', 'v1')).digest).toBe(digest);
    expect(primaryReads).toEqual([]);
    expect(missed).toEqual([]);
  });

  it('reads a tag the primary moved since this region copied it from the primary', async () => {
    const { seq } = await local('app', 'v1', 'old');
    const newer = image('new');
    onPrimary('app', 'v1', newer);
    announced.set('app:v1', { seq: seq + 1, digest: digestOf(newer) });

    const got = await manifests.get('app', 'v1');
    expect(got.digest).toBe(digestOf(newer));
    expect(got.bytes.equals(newer)).toBe(true);
    expect((await manifests.resolve('app', 'v1')).digest).toBe(digestOf(newer));
    expect(primaryReads).toContain('app@v1');
    expect(missed).toContainEqual({ kind: 'tag', repository: 'app', tag: 'v1' });
  });

  it('reads a tag the region has not copied yet from the primary', async () => {
    const bytes = image('fresh');
    onPrimary('app', 'v2', bytes);
    expect((await manifests.get('app', 'v2')).digest).toBe(digestOf(bytes));
    expect(missed).toEqual([{ kind: 'tag', repository: 'app', tag: 'v2' }]);
  });

  it('serves its own copy of a behind tag while the primary is unreachable', async () => {
    const { digest, seq } = await local('app', 'v1', 'old');
    announced.set('app:v1', { seq: seq + 1 });
    down = true;
    expect((await manifests.get('app', 'v1')).digest).toBe(digest);
  });

  it('answers UNAVAILABLE for a tag it does not hold while the primary is unreachable', async () => {
    down = true;
    await expect(manifests.get('app', 'v1')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('fetches a manifest missing by digest from the primary, and refuses bytes that do not match', async () => {
    const bytes = image('by-digest');
    const digest = digestOf(bytes);
    onPrimary('app', digest, bytes);
    expect((await manifests.get('app', digest)).bytes.equals(bytes)).toBe(true);
    expect(missed).toEqual([{ kind: 'manifest', repository: 'app', digest }]);

    const forged = digestOf('something else');
    onPrimary('app', forged, bytes, forged);
    await expect(manifests.get('app', forged)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('answers MANIFEST_UNKNOWN when neither the region nor the primary has it', async () => {
    await expect(manifests.get('app', 'nope')).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    });
    await expect(manifests.get('app', digestOf('nothing'))).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    });
  });
});
