/**
 * skopeo against a real node, on both storage drivers: push from an OCI layout, pull to an OCI
 * layout and to a `dir:`, inspect, list-tags, delete, registry→registry copy (cross-repository
 * mount), a multi-arch index, a Docker schema 2 image, nested names and sha512 content.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RegistryEvent } from '@meridian/registry';
import {
  ClientCommandError,
  createClientSandbox,
  skopeoCopy,
  skopeoDelete,
  skopeoInspect,
  skopeoInspectRaw,
  skopeoListTags,
  type ClientSandbox,
} from './helpers/clients';
import { startTestNode, type TestNode } from './helpers/node';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  blobsOf,
  buildImage,
  buildIndex,
  digestOf,
  randomLayer,
  readOciLayout,
  writeOciLayout,
  type Blob,
  type Image,
  type ImageIndex,
} from './helpers/oci-layout';

jest.setTimeout(300_000);

/** Asserts every blob reads back byte-for-byte and that its bytes hash to its digest. */
function expectBlobs(read: (digest: string) => Buffer, blobs: Blob[]): void {
  for (const b of blobs) {
    const got = read(b.digest);
    expect(digestOf(got, b.digest.startsWith('sha512:') ? 'sha512' : 'sha256')).toBe(b.digest);
    expect(got.equals(b.data)).toBe(true);
  }
}

/** Asserts a `skopeo copy ... oci:DIR:TAG` result holds exactly `img` under `tag`. */
function expectOciLayoutHolds(dir: string, tag: string, img: Image): void {
  const layout = readOciLayout(dir);
  const top = layout.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag,
  );
  expect(top?.digest).toBe(img.manifest.digest);
  expectBlobs(layout.blob, blobsOf(img));
}

/** Asserts a `skopeo copy ... dir:DIR` result holds exactly `img` (`manifest.json`, `<hex>`). */
function expectDirHolds(dir: string, img: Image): void {
  expect(readFileSync(join(dir, 'manifest.json')).equals(img.manifest.data)).toBe(true);
  expectBlobs((d) => readFileSync(join(dir, d.split(':')[1]!)), [img.config, ...img.layers]);
}

const readDigestFile = (p: string) => readFileSync(p, 'utf8').trim();

/** Pushes blobs (monolithic POST+PUT) and a manifest by `ref` over plain HTTP. */
async function httpPush(url: string, repo: string, blobs: Blob[], manifest: Blob, ref: string) {
  for (const b of blobs) {
    const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const loc = new URL(start.headers.get('location') ?? '', url);
    loc.searchParams.set('digest', b.digest);
    const put = await fetch(loc, {
      method: 'PUT',
      body: b.data,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.status).toBe(201);
  }
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    body: manifest.data,
    headers: { 'content-type': manifest.mediaType },
  });
  expect(res.status).toBe(201);
}

describe.each(['fs', 's3'] as const)('skopeo against a %s-backed registry', (storage) => {
  let node: TestNode;
  let sb: ClientSandbox;
  let layout: string;
  const events: RegistryEvent[] = [];
  let multi: Image;
  let big: Image;
  let small: Image;
  let multiArch: ImageIndex;

  const docker = (ref: string) => `docker://${node.host}/${ref}`;

  beforeAll(async () => {
    node = await startTestNode({ storage });
    node.registry.events.subscribe((e) => void events.push(e));
    sb = await createClientSandbox();
    multi = buildImage({
      layers: [randomLayer(), randomLayer({ files: 3 }), randomLayer({ files: 1, fileSize: 100 })],
    });
    big = buildImage({ layers: [randomLayer({ files: 1, fileSize: 20 * 1024 * 1024 })] });
    small = buildImage();
    multiArch = buildIndex([
      buildImage({ platform: { os: 'linux', architecture: 'amd64' } }),
      buildImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }),
    ]);
    layout = join(sb.dir, 'src');
    writeOciLayout(layout, { multi, big, small, multiarch: multiArch });
  });

  afterAll(async () => {
    await sb?.close();
    await node?.close();
  });

  it('pushes a multi-layer image from an OCI layout, keeping its manifest digest', async () => {
    const digestFile = sb.path('multi.digest');
    await skopeoCopy(sb, `oci:${layout}:multi`, docker('meridian/multi:v1'), [
      '--digestfile',
      digestFile,
    ]);
    expect(readDigestFile(digestFile)).toBe(multi.manifest.digest);
  });

  it('pulls it back to an OCI layout and to a dir, byte for byte', async () => {
    const ociOut = sb.path('pull-oci');
    await skopeoCopy(sb, docker('meridian/multi:v1'), `oci:${ociOut}:v1`);
    expectOciLayoutHolds(ociOut, 'v1', multi);

    const dirOut = sb.path('pull-dir');
    await skopeoCopy(sb, docker(`meridian/multi@${multi.manifest.digest}`), `dir:${dirOut}`);
    expectDirHolds(dirOut, multi);
  });

  it('inspect shows the digest, tag, platform and layers; --raw the exact manifest', async () => {
    const info = await skopeoInspect(sb, docker('meridian/multi:v1'));
    expect(info.Digest).toBe(multi.manifest.digest);
    expect(info.RepoTags).toEqual(['v1']);
    expect(info.Os).toBe('linux');
    expect(info.Architecture).toBe('amd64');
    expect(info.Layers).toEqual(multi.layers.map((l) => l.digest));

    const raw = await skopeoInspectRaw(sb, docker('meridian/multi:v1'));
    expect(raw.equals(multi.manifest.data)).toBe(true);
    const byDigest = await skopeoInspectRaw(sb, docker(`meridian/multi@${multi.manifest.digest}`));
    expect(byDigest.equals(multi.manifest.data)).toBe(true);
  });

  it('pushes and pulls an image with a ~20 MiB layer intact', async () => {
    await skopeoCopy(sb, `oci:${layout}:big`, docker('meridian/big:v1'));
    const out = sb.path('pull-big');
    await skopeoCopy(sb, docker('meridian/big:v1'), `dir:${out}`);
    expect(big.layers[0]!.size).toBeGreaterThan(20 * 1024 * 1024);
    expectDirHolds(out, big);
  });

  it('list-tags lists every pushed tag, sorted', async () => {
    const tags = ['v2', 'latest', '1.0', 'alpha', 'V1'];
    for (const tag of tags)
      await skopeoCopy(sb, `oci:${layout}:small`, docker(`meridian/tags:${tag}`));
    expect(await skopeoListTags(sb, docker('meridian/tags'))).toEqual([...tags].sort());
  });

  it('delete removes the manifest and its tag; inspect then fails', async () => {
    await skopeoCopy(sb, `oci:${layout}:small`, docker('meridian/del:keep'));
    await skopeoCopy(sb, `oci:${layout}:multi`, docker('meridian/del:gone'));
    await skopeoDelete(sb, docker('meridian/del:gone'));

    for (const ref of ['meridian/del:gone', `meridian/del@${multi.manifest.digest}`]) {
      const err = await skopeoInspectRaw(sb, docker(ref)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ClientCommandError);
      expect((err as ClientCommandError).stderr).toMatch(/manifest unknown/i);
    }
    expect(await skopeoListTags(sb, docker('meridian/del'))).toEqual(['keep']);
    // The other repository holding the same image is untouched.
    const raw = await skopeoInspectRaw(sb, docker('meridian/multi:v1'));
    expect(raw.equals(multi.manifest.data)).toBe(true);
  });

  it('copies registry→registry across repositories by mounting layers, not re-uploading', async () => {
    const from = events.length;
    await skopeoCopy(sb, docker('meridian/multi:v1'), docker('copies/multi:v1'));
    const mine = events.slice(from).filter((e) => e.repository === 'copies/multi');
    const mounted = mine.filter((e) => e.type === 'blobMounted').map((e) => e.digest);
    const uploaded = mine.filter((e) => e.type === 'blobCommitted').map((e) => e.digest);
    // skopeo mounts every layer it knows to be in another repository of the same registry; it
    // never tries to reuse the config (containers/image uploads configs unconditionally).
    expect(mounted.sort()).toEqual(multi.layers.map((l) => l.digest).sort());
    expect(uploaded.filter((d) => d !== multi.config.digest)).toEqual([]);

    const out = sb.path('pull-copy');
    await skopeoCopy(sb, docker('copies/multi:v1'), `dir:${out}`);
    expectDirHolds(out, multi);
  });

  it('pushes a multi-arch index with --all and pulls a single platform', async () => {
    const digestFile = sb.path('index.digest');
    await skopeoCopy(sb, `oci:${layout}:multiarch`, docker('meridian/multiarch:v1'), [
      '--all',
      '--preserve-digests',
      '--digestfile',
      digestFile,
    ]);
    expect(readDigestFile(digestFile)).toBe(multiArch.index.digest);
    const raw = await skopeoInspectRaw(sb, docker('meridian/multiarch:v1'));
    expect(raw.equals(multiArch.index.data)).toBe(true);

    const arm = multiArch.images[1]!;
    const out = sb.path('pull-arm64');
    await sb.skopeo([
      ...['--override-os', 'linux', '--override-arch', 'arm64', '--override-variant', 'v8'],
      ...['copy', '--src-tls-verify=false', docker('meridian/multiarch:v1'), `oci:${out}:arm64`],
    ]);
    expectOciLayoutHolds(out, 'arm64', arm);
    // Only the chosen platform was copied.
    const amdLayer = multiArch.images[0]!.layers[0]!.digest.split(':')[1]!;
    expect(existsSync(join(out, 'blobs', 'sha256', amdLayer))).toBe(false);
  });

  it('converts to and serves a Docker schema 2 image (--format v2s2)', async () => {
    const digestFile = sb.path('v2s2.digest');
    await skopeoCopy(sb, `oci:${layout}:small`, docker('meridian/docker:v1'), [
      ...['--format', 'v2s2', '--digestfile', digestFile],
    ]);
    const raw = await skopeoInspectRaw(sb, docker('meridian/docker:v1'));
    expect(digestOf(raw)).toBe(readDigestFile(digestFile));
    const m = JSON.parse(raw.toString('utf8')) as {
      mediaType: string;
      config: { mediaType: string; digest: string };
      layers: { mediaType: string; digest: string }[];
    };
    expect(m.mediaType).toBe(DOCKER_MANIFEST);
    expect(m.config).toMatchObject({ mediaType: DOCKER_CONFIG, digest: small.config.digest });
    expect(m.layers).toEqual(
      small.layers.map(
        (l) =>
          expect.objectContaining({ mediaType: DOCKER_LAYER_GZIP, digest: l.digest }) as unknown,
      ),
    );
    const res = await fetch(`${node.url}/v2/meridian/docker/manifests/v1`, {
      headers: { Accept: DOCKER_MANIFEST },
    });
    expect(res.headers.get('content-type')).toBe(DOCKER_MANIFEST);

    const out = sb.path('pull-docker');
    await skopeoCopy(sb, docker('meridian/docker:v1'), `dir:${out}`);
    expect(readFileSync(join(out, 'manifest.json')).equals(raw)).toBe(true);
    expectBlobs((d) => readFileSync(join(out, d.split(':')[1]!)), [small.config, ...small.layers]);
  });

  it('handles nested repository names (team/app/web)', async () => {
    await skopeoCopy(sb, `oci:${layout}:small`, docker('team/app/web:1.0'));
    expect(await skopeoListTags(sb, docker('team/app/web'))).toEqual(['1.0']);
    expect((await skopeoInspect(sb, docker('team/app/web:1.0'))).Digest).toBe(
      small.manifest.digest,
    );
    const out = sb.path('pull-nested');
    await skopeoCopy(sb, docker('team/app/web:1.0'), `oci:${out}:1.0`);
    expectOciLayoutHolds(out, '1.0', small);
  });
  it('serves sha512-addressed content to skopeo (which cannot push sha512 itself)', async () => {
    const img = buildImage({ algorithm: 'sha512', layers: [randomLayer({ algorithm: 'sha512' })] });
    const src = join(sb.dir, 'src-sha512');
    writeOciLayout(src, { v1: img });
    // skopeo 1.9 (containers/image 5.23) re-digests every blob it writes with sha256 and then
    // rejects the mismatch, whatever the destination (registry, oci:, dir:), and has no
    // digest-algorithm option: so it can neither push nor pull sha512 blobs. A newer skopeo
    // that can must get the image through intact.
    const push = await skopeoCopy(sb, `oci:${src}:v1`, docker('meridian/sha512:skopeo')).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (push === undefined) {
      const raw = await skopeoInspectRaw(sb, docker('meridian/sha512:skopeo'));
      expect(raw.equals(img.manifest.data)).toBe(true);
    } else {
      expect(push).toBeInstanceOf(ClientCommandError);
      expect((push as ClientCommandError).stderr).toMatch(
        /blob with digest sha512:[0-9a-f]{128} saved with digest sha256:/,
      );
    }

    // Pushed over HTTP by its sha512 digest and by tag, skopeo reads the manifest back by both,
    // verifying the sha512 digest of what the registry serves.
    await httpPush(
      node.url,
      'meridian/sha512',
      [img.config, ...img.layers],
      img.manifest,
      img.manifest.digest,
    );
    await httpPush(node.url, 'meridian/sha512', [], img.manifest, 'v1');
    const byDigest = await skopeoInspectRaw(sb, docker(`meridian/sha512@${img.manifest.digest}`));
    expect(byDigest.equals(img.manifest.data)).toBe(true);
    const byTag = await skopeoInspectRaw(sb, docker('meridian/sha512:v1'));
    expect(byTag.equals(img.manifest.data)).toBe(true);
    // And the sha512 blobs are served under their sha512 digests.
    for (const b of [img.config, ...img.layers]) {
      const res = await fetch(`${node.url}/v2/meridian/sha512/blobs/${b.digest}`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(b.data)).toBe(true);
    }
  });
});
