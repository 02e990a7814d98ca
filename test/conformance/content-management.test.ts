/**
 * The conformance suite's "Content Management" workflow (distribution-spec
 * conformance/04_management_test.go, in its stricter later form that wants 202 on every delete):
 * a tag and an untagged manifest, tag delete, manifest delete, the tag list shrinking, blob
 * deletes, and 404s afterwards. Then what deletes must and must not take with them: the tags of a
 * deleted manifest, an index's children, referrers, other repositories' links; and that deleted
 * content can be pushed again.
 */
import { startTestNode, type StorageKind, type TestNode } from '../helpers/node';
import { RegistryClient, expectOciError, type HttpResponse } from '../helpers/http';
import {
  artifact,
  configBlob,
  image,
  imageIndex,
  imageManifest,
  MediaTypes,
  randomBlob,
} from '../helpers/images';

describe.each<StorageKind>(['fs', 's3'])('content management workflow (%s storage)', (storage) => {
  let node: TestNode;
  let c: RegistryClient;
  const repo = 'conformance/management';
  const tag = 'tagtest0';
  const layer = randomBlob(100, MediaTypes.ociLayerGzip);
  const configs = [configBlob(), configBlob()];
  const tagged = imageManifest({ config: configs[1]!, layers: [layer], indent: '\t' });
  const untagged = imageManifest({ config: configs[0]!, layers: [layer], indent: '\t' });
  let numTags = 0;
  const tags = async (r = repo) =>
    (await c.get(`/v2/${r}/tags/list`)).json<{ tags: string[] }>().tags;

  beforeAll(async () => {
    node = await startTestNode({ storage });
    c = new RegistryClient(node.url);
  });
  afterAll(async () => {
    await node?.close();
  });

  describe('setup', () => {
    it('populates the registry with config blobs and a layer', async () => {
      for (const b of [...configs, layer]) expect((await c.uploadBlob(repo, b)).status).toBe(201);
    });
    it('populates the registry with a tag and an untagged manifest', async () => {
      expect((await c.putManifest(repo, 'other', untagged)).status).toBe(201);
      expect((await c.putManifest(repo, tag, tagged)).status).toBe(201);
      expect((await c.putManifest(repo, untagged.digest, untagged)).status).toBe(201);
    });
    it('counts the tags before anything is deleted', async () => {
      const res = await c.get(`/v2/${repo}/tags/list`);
      expect(res.status).toBe(200);
      numTags = res.json<{ tags: string[] }>().tags.length;
      expect(numTags).toBe(2);
    });
  });

  describe('manifest delete', () => {
    it('DELETE of a tag yields 202; the tag is then unknown but the manifest stays', async () => {
      const res = await c.delete(`/v2/${repo}/manifests/${tag}`);
      expect(res.status).toBe(202);
      expectOciError(await c.get(`/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await c.head(`/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
      expect((await c.get(`/v2/${repo}/manifests/${tagged.digest}`)).status).toBe(200);
    });

    it('DELETE of a manifest by digest yields 202', async () => {
      expect((await c.delete(`/v2/${repo}/manifests/${tagged.digest}`)).status).toBe(202);
      expect((await c.delete(`/v2/${repo}/manifests/${untagged.digest}`)).status).toBe(202);
    });

    it('GET and HEAD of a deleted manifest yield 404', async () => {
      for (const m of [tagged, untagged]) {
        expectOciError(await c.get(`/v2/${repo}/manifests/${m.digest}`), 404, 'MANIFEST_UNKNOWN');
        expectOciError(await c.head(`/v2/${repo}/manifests/${m.digest}`), 404, 'MANIFEST_UNKNOWN');
      }
    });

    it('the tag list reflects the deletions (the tag of the deleted manifest went with it)', async () => {
      const res = await c.get(`/v2/${repo}/tags/list`);
      expect(res.status).toBe(200);
      const now = res.json<{ tags: string[] }>().tags;
      expect(now.length).toBeLessThan(numTags);
      expect(now).toEqual([]);
      expectOciError(await c.get(`/v2/${repo}/manifests/other`), 404, 'MANIFEST_UNKNOWN');
    });

    it('deleting it again, or a tag that never existed, yields 404 MANIFEST_UNKNOWN', async () => {
      expectOciError(
        await c.delete(`/v2/${repo}/manifests/${tagged.digest}`),
        404,
        'MANIFEST_UNKNOWN',
      );
      expectOciError(await c.delete(`/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await c.delete(`/v2/${repo}/manifests/sha256:bad`), 400, 'DIGEST_INVALID');
    });
  });

  describe('blob delete', () => {
    it('DELETE of the config blob yields 202', async () => {
      expect((await c.delete(`/v2/${repo}/blobs/${configs[1]!.digest}`)).status).toBe(202);
    });
    it('DELETE of the layer blob yields 202', async () => {
      expect((await c.delete(`/v2/${repo}/blobs/${layer.digest}`)).status).toBe(202);
    });
    it('GET and HEAD of a deleted blob yield 404', async () => {
      for (const b of [configs[1]!, layer]) {
        expectOciError(await c.get(`/v2/${repo}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
        expectOciError(await c.head(`/v2/${repo}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
      }
      expect((await c.get(`/v2/${repo}/blobs/${configs[0]!.digest}`)).status).toBe(200);
    });
    it('deleting it again yields 404 BLOB_UNKNOWN', async () => {
      expectOciError(await c.delete(`/v2/${repo}/blobs/${layer.digest}`), 404, 'BLOB_UNKNOWN');
    });
  });

  describe('what a delete takes with it', () => {
    const r = 'conformance/deletes';
    let push: (ref: string, ...imgs: ReturnType<typeof image>[]) => Promise<void>;
    beforeAll(() => {
      push = async (ref, ...imgs) => {
        for (const img of imgs) await c.pushImage(r, ref, img.blobs, img.manifest);
      };
    });

    it('deleting a manifest removes every tag pointing at it and no other', async () => {
      const a = image();
      const b = image();
      await push('a1', a);
      await push('b1', b);
      expect((await c.putManifest(r, 'a2', a.manifest)).status).toBe(201);
      expect((await c.delete(`/v2/${r}/manifests/${a.manifest.digest}`)).status).toBe(202);
      expect(await tags(r)).toEqual(['b1']);
      expect((await c.get(`/v2/${r}/manifests/b1`)).status).toBe(200);
    });

    it("deleting an index leaves its children; deleting a child leaves the index's bytes", async () => {
      const a = image();
      await push(a.manifest.digest, a);
      const index = imageIndex({ manifests: [a.manifest] });
      expect((await c.putManifest(r, 'multi', index)).status).toBe(201);
      expect((await c.delete(`/v2/${r}/manifests/${index.digest}`)).status).toBe(202);
      expect((await c.get(`/v2/${r}/manifests/${a.manifest.digest}`)).status).toBe(200);
      expectOciError(await c.get(`/v2/${r}/manifests/multi`), 404, 'MANIFEST_UNKNOWN');
    });

    it('deleting a referrer takes it out of the referrers list; deleting the subject keeps the others', async () => {
      const s = image();
      await push('subject', s);
      const sig = artifact({
        subject: s.manifest,
        artifactType: 'application/vnd.example.signature',
      });
      const sbom = artifact({ subject: s.manifest, artifactType: 'application/vnd.example.sbom' });
      for (const a of [sig, sbom]) await c.pushImage(r, a.manifest.digest, a.blobs, a.manifest);
      const list = async () =>
        (await c.get(`/v2/${r}/referrers/${s.manifest.digest}`))
          .json<{ manifests: { digest: string }[] }>()
          .manifests.map((d) => d.digest)
          .sort();
      expect(await list()).toEqual([sig.manifest.digest, sbom.manifest.digest].sort());
      expect((await c.delete(`/v2/${r}/manifests/${sig.manifest.digest}`)).status).toBe(202);
      expect(await list()).toEqual([sbom.manifest.digest]);
      expect((await c.delete(`/v2/${r}/manifests/${s.manifest.digest}`)).status).toBe(202);
      expect(await list()).toEqual([sbom.manifest.digest]);
    });

    it("deleting a blob in one repository leaves another repository's link", async () => {
      const b = randomBlob(50);
      expect((await c.uploadBlob(r, b)).status).toBe(201);
      expect((await c.uploadBlob(`${r}-2`, b)).status).toBe(201);
      expect((await c.delete(`/v2/${r}/blobs/${b.digest}`)).status).toBe(202);
      expectOciError(await c.head(`/v2/${r}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
      const other: HttpResponse = await c.get(`/v2/${r}-2/blobs/${b.digest}`);
      expect(other.status).toBe(200);
      expect(other.body.equals(b.bytes)).toBe(true);
    });

    it('deleted content can be pushed again and is served again', async () => {
      const a = image();
      await push('again', a);
      expect((await c.delete(`/v2/${r}/manifests/${a.manifest.digest}`)).status).toBe(202);
      for (const b of a.blobs)
        expect((await c.delete(`/v2/${r}/blobs/${b.digest}`)).status).toBe(202);
      expectOciError(await c.putManifest(r, 'again', a.manifest), 404, 'MANIFEST_BLOB_UNKNOWN');
      await push('again', a);
      const get = await c.get(`/v2/${r}/manifests/again`);
      expect(get.status).toBe(200);
      expect(get.body.equals(a.manifest.bytes)).toBe(true);
      expect(
        (await c.get(`/v2/${r}/blobs/${a.layers[0]!.digest}`)).body.equals(a.layers[0]!.bytes),
      ).toBe(true);
    });
  });
});
