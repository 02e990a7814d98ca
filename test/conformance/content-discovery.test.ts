/**
 * The conformance suite's "Content Discovery" workflow (distribution-spec
 * conformance/03_discovery_test.go): tags test0..3 and TEST0..3 on one manifest, then the
 * references setup (referrers pushed before and after their subject, an index referrer, and one
 * whose subject never arrives, each answered with `OCI-Subject`), then tag listing (`n`, `last`,
 * order), the referrers API (unknown subject, five referrers with their annotations, the
 * `artifactType` filter, a missing subject) and teardown. Then pagination with `Link` headers.
 */
import { startTestNode, type StorageKind, type TestNode } from '../helpers/node';
import { RegistryClient, expectOciError, type HttpResponse } from '../helpers/http';
import {
  blobOf,
  configBlob,
  descriptor,
  emptyJson,
  imageIndex,
  imageManifest,
  MediaTypes,
  randomBlob,
  type Manifest,
} from '../helpers/images';

interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: {
    mediaType: string;
    digest: string;
    size: number;
    artifactType?: string;
    annotations?: Record<string, string>;
  }[];
}

describe.each<StorageKind>(['fs', 's3'])('content discovery workflow (%s storage)', (storage) => {
  let node: TestNode;
  let c: RegistryClient;
  const repo = 'conformance/discovery';
  const annotationKey = 'org.opencontainers.conformance.test';
  const typeA = 'application/vnd.nhl.peanut.butter.bagel';
  const typeB = 'application/vnd.nba.strawberry.jam.croissant';
  const typeIndex = 'application/vnd.food.stand';
  const dummyDigest = blobOf('hello world').digest;

  // manifests[2] carries the tags; manifests[4] is the subject; manifests[3] is never pushed.
  const layer = randomBlob(100, MediaTypes.ociLayerGzip);
  const configs = [0, 1, 2, 3, 4].map(() => configBlob());
  const manifests = configs.map((config) =>
    imageManifest({ config, layers: [layer], indent: '\t' }),
  );
  const subject = manifests[4]!;
  const missing = manifests[3]!;
  const refBlobA = blobOf('NHL Peanut Butter on my NHL bagel', typeA);
  const refBlobB = blobOf('NBA Strawberry Jam on my NBA croissant', typeB);

  const ann = (v: string) => ({ [annotationKey]: v });
  // The type carried by the config media type (pre-1.1 artifacts) ...
  const aConfig = imageManifest({
    config: refBlobA,
    layers: [emptyJson],
    subject,
    annotations: ann('test config a'),
    indent: '\t',
  });
  const bConfig = imageManifest({
    config: refBlobB,
    layers: [emptyJson],
    subject,
    annotations: ann('test config b'),
    indent: '\t',
  });
  // ... or by `artifactType`, with the empty config.
  const aLayer = imageManifest({
    artifactType: typeA,
    config: emptyJson,
    layers: [refBlobA],
    subject,
    annotations: ann('test layer a'),
    indent: '\t',
  });
  const bLayer = imageManifest({
    artifactType: typeB,
    config: emptyJson,
    layers: [refBlobB],
    subject,
    annotations: ann('test layer b'),
    indent: '\t',
  });
  const cLayer = imageManifest({
    artifactType: typeB,
    config: emptyJson,
    layers: [refBlobB],
    subject: missing,
  });
  const refIndex = imageIndex({
    artifactType: typeIndex,
    manifests: [descriptor(aConfig), descriptor(aLayer)],
    subject,
    annotations: ann('test index'),
  });
  const annotationOf = new Map<string, string>([
    [aConfig.digest, 'test config a'],
    [bConfig.digest, 'test config b'],
    [aLayer.digest, 'test layer a'],
    [bLayer.digest, 'test layer b'],
    [refIndex.digest, 'test index'],
  ]);
  const tagNames = [0, 1, 2, 3].flatMap((i) => [`test${i}`, `TEST${i}`]);
  let numTags = 0;

  const tagList = (query?: Record<string, string>) => c.get(`/v2/${repo}/tags/list`, { query });
  const tagsOf = (res: HttpResponse) => res.json<{ name: string; tags: string[] }>().tags;
  const referrers = (digest: string, query?: Record<string, string>) =>
    c.get(`/v2/${repo}/referrers/${digest}`, { query });

  async function pushReferrer(m: Manifest, expectedSubject: string): Promise<void> {
    const res = await c.putManifest(repo, m.digest, m);
    expect(res.status).toBe(201);
    expect(res.header('oci-subject')).toBe(expectedSubject);
  }

  beforeAll(async () => {
    node = await startTestNode({ storage });
    c = new RegistryClient(node.url);
  });
  afterAll(async () => {
    await node?.close();
  });

  describe('setup', () => {
    it('populates the registry with a config blob and a layer', async () => {
      expect((await c.uploadBlob(repo, configs[2]!)).status).toBe(201);
      expect((await c.uploadBlob(repo, layer)).status).toBe(201);
    });

    it('populates the registry with the test tags', async () => {
      for (const t of tagNames)
        expect((await c.putManifest(repo, t, manifests[2]!)).status).toBe(201);
      expect(tagsOf(await tagList())).toHaveLength(tagNames.length);
    });

    it('references setup: referrers before and after their subject, each answered with OCI-Subject', async () => {
      expect(emptyJson.digest).toBe(
        'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
      );
      expect((await c.uploadBlob(repo, emptyJson)).status).toBe(201);
      expect((await c.uploadBlob(repo, refBlobA)).status).toBe(201);
      // Before the subject exists.
      await pushReferrer(aConfig, subject.digest);
      await pushReferrer(aLayer, subject.digest);
      const idx = await c.putManifest(repo, refIndex.digest, refIndex);
      expect(idx.status).toBe(201);
      expect(idx.header('oci-subject')).toBe(subject.digest);
      // The subject.
      expect((await c.uploadBlob(repo, configs[4]!)).status).toBe(201);
      expect((await c.uploadBlob(repo, layer)).status).toBe(201);
      const put = await c.putManifest(repo, 'tagtest0', subject);
      expect(put.status).toBe(201);
      expect(put.header('oci-subject')).toBeUndefined();
      // After the subject exists.
      expect((await c.uploadBlob(repo, refBlobB)).status).toBe(201);
      await pushReferrer(bConfig, subject.digest);
      await pushReferrer(bLayer, subject.digest);
      // A subject that is never pushed.
      await pushReferrer(cLayer, missing.digest);
    });
  });

  describe('listing tags', () => {
    it('GET of the tag list yields 200, sorted, with the repository name', async () => {
      const res = await tagList();
      expect(res.status).toBe(200);
      expect(res.header('content-type')).toMatch(/^application\/json/);
      const body = res.json<{ name: string; tags: string[] }>();
      expect(body.name).toBe(repo);
      numTags = body.tags.length;
      expect(body.tags).toEqual([...tagNames, 'tagtest0'].sort());
    });

    it('the number of tags is limited by n', async () => {
      const n = Math.floor(numTags / 2);
      const res = await tagList({ n: String(n) });
      expect(res.status).toBe(200);
      expect(tagsOf(res)).toHaveLength(n);
    });

    it('the list starts after last', async () => {
      const n = Math.floor(numTags / 2);
      const first = tagsOf(await tagList({ n: String(n) }));
      const last = first[n - 1]!;
      const res = await tagList({ n: String(n), last });
      expect(res.status).toBe(200);
      const next = tagsOf(res);
      expect(next.length).toBeLessThanOrEqual(n);
      expect(next).not.toContain(last);
      expect(next[0]! > last).toBe(true);
    });
  });

  describe('listing referrers', () => {
    it('an unknown subject yields 200 and an empty index', async () => {
      const res = await referrers(dummyDigest);
      expect(res.status).toBe(200);
      expect(res.header('content-type')).toBe(MediaTypes.ociIndex);
      const index = res.json<Index>();
      expect(index.schemaVersion).toBe(2);
      expect(index.mediaType).toBe(MediaTypes.ociIndex);
      expect(index.manifests).toEqual([]);
    });

    it('the subject lists its five referrers, each with its own annotation', async () => {
      const res = await referrers(subject.digest);
      expect(res.status).toBe(200);
      expect(res.header('content-type')).toBe(MediaTypes.ociIndex);
      const { manifests: found } = res.json<Index>();
      expect(found).toHaveLength(5);
      expect(new Set(found.map((d) => d.digest)).size).toBe(5);
      for (const d of found) {
        expect(Object.keys(d.annotations ?? {})).toHaveLength(1);
        expect(d.annotations![annotationKey]).toBe(annotationOf.get(d.digest));
      }
      const byDigest = new Map(found.map((d) => [d.digest, d]));
      // artifactType: the manifest's own, else its config media type; an index keeps its own.
      expect(byDigest.get(aConfig.digest)).toMatchObject({
        artifactType: typeA,
        mediaType: MediaTypes.ociManifest,
        size: aConfig.size,
      });
      expect(byDigest.get(aLayer.digest)?.artifactType).toBe(typeA);
      expect(byDigest.get(bConfig.digest)?.artifactType).toBe(typeB);
      expect(byDigest.get(refIndex.digest)).toMatchObject({
        artifactType: typeIndex,
        mediaType: MediaTypes.ociIndex,
      });
    });

    it('the artifactType filter returns the two matches and says so in OCI-Filters-Applied', async () => {
      const res = await referrers(subject.digest, { artifactType: typeA });
      expect(res.status).toBe(200);
      expect(res.header('content-type')).toBe(MediaTypes.ociIndex);
      expect(res.header('oci-filters-applied')).toBe('artifactType');
      const { manifests: found } = res.json<Index>();
      expect(found.map((d) => d.digest).sort()).toEqual([aConfig.digest, aLayer.digest].sort());
      for (const d of found) {
        expect(d.artifactType).toBe(typeA);
        expect(d.annotations![annotationKey]).toBe(annotationOf.get(d.digest));
      }
      const none = await referrers(subject.digest, { artifactType: 'application/vnd.none' });
      expect(none.json<Index>().manifests).toEqual([]);
    });

    it('a subject that was never pushed lists its one referrer', async () => {
      const res = await referrers(missing.digest);
      expect(res.status).toBe(200);
      expect(res.header('content-type')).toBe(MediaTypes.ociIndex);
      const { manifests: found } = res.json<Index>();
      expect(found.map((d) => d.digest)).toEqual([cLayer.digest]);
    });

    it('a malformed digest yields 400; another repository has no referrers', async () => {
      expectOciError(await referrers('sha256:nothex'), 400, 'DIGEST_INVALID');
      const other = await c.get(`/v2/other/repo/referrers/${subject.digest}`);
      expect(other.status).toBe(200);
      expect(other.json<Index>().manifests).toEqual([]);
    });
  });

  describe('teardown', () => {
    it('deleting the manifests and tags yields 202 (or 404 once gone)', async () => {
      const refs = [
        refIndex.digest,
        manifests[2]!.digest,
        subject.digest,
        aConfig.digest,
        aLayer.digest,
        'tagtest0',
      ];
      refs.push(bConfig.digest, bLayer.digest, cLayer.digest);
      for (const ref of refs)
        expect([202, 404]).toContain((await c.delete(`/v2/${repo}/manifests/${ref}`)).status);
      expect(tagsOf(await tagList())).toEqual([]);
    });

    it('deleted referrers leave the referrers list', async () => {
      expect((await referrers(subject.digest)).json<Index>().manifests).toEqual([]);
      expect((await referrers(missing.digest)).json<Index>().manifests).toEqual([]);
    });

    it('deleting the blobs yields 202', async () => {
      for (const b of [configs[2]!, layer, configs[4]!, refBlobA, refBlobB, emptyJson]) {
        expect((await c.delete(`/v2/${repo}/blobs/${b.digest}`)).status).toBe(202);
      }
    });
  });

  describe('pagination', () => {
    const r = 'conformance/paging';
    const tags = Array.from({ length: 7 }, (_, i) => `v${i}`);
    beforeAll(async () => {
      const m = imageManifest({ config: configs[0]!, layers: [] });
      expect((await c.uploadBlob(r, configs[0]!)).status).toBe(201);
      for (const t of tags) expect((await c.putManifest(r, t, m)).status).toBe(201);
    });

    it('n with more tags left gives a Link to the next page; following it walks every tag once', async () => {
      const seen: string[] = [];
      let next: string | undefined = `/v2/${r}/tags/list?n=3`;
      let pages = 0;
      while (next) {
        const res = await c.get(next);
        expect(res.status).toBe(200);
        const page = tagsOf(res);
        expect(page.length).toBeLessThanOrEqual(3);
        seen.push(...page);
        const link = res.header('link');
        if (link) expect(link).toMatch(/^<[^>]+>; rel="next"$/);
        next = link ? /^<([^>]+)>/.exec(link)![1] : undefined;
        pages++;
      }
      expect(pages).toBe(3);
      expect(seen).toEqual(tags);
    });

    it('n=0 yields an empty list and no Link', async () => {
      const res = await c.get(`/v2/${r}/tags/list`, { query: { n: '0' } });
      expect(res.status).toBe(200);
      expect(tagsOf(res)).toEqual([]);
      expect(res.header('link')).toBeUndefined();
    });

    it('last without n lists everything after it; the last page has no Link', async () => {
      const res = await c.get(`/v2/${r}/tags/list`, { query: { last: 'v3' } });
      expect(tagsOf(res)).toEqual(['v4', 'v5', 'v6']);
      expect(res.header('link')).toBeUndefined();
      const exact = await c.get(`/v2/${r}/tags/list`, { query: { n: '7' } });
      expect(tagsOf(exact)).toEqual(tags);
      expect(exact.header('link')).toBeUndefined();
    });

    it('an invalid n yields 400 with the spec error body', async () => {
      for (const n of ['-1', 'abc', '1.5']) {
        expectOciError(await c.get(`/v2/${r}/tags/list`, { query: { n } }), 400, 'UNSUPPORTED');
      }
    });

    it('the tag list of a repository that does not exist yields 404 NAME_UNKNOWN', async () => {
      expectOciError(await c.get('/v2/never/pushed/tags/list'), 404, 'NAME_UNKNOWN');
    });
  });
});
