/**
 * podman against a real node, on both storage drivers: load an image from an OCI layout into
 * (isolated, vfs) local storage, push it to the registry, pull it back into a second, empty
 * storage and check podman sees the same image (ID = config digest, same digest and layers).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClientSandbox, type ClientSandbox } from './helpers/clients';
import { startTestNode, type TestNode } from './helpers/node';
import {
  buildImage,
  digestOf,
  randomLayer,
  writeOciLayout,
  type Image,
} from './helpers/oci-layout';

jest.setTimeout(300_000);

/** The `podman image inspect` fields the tests look at. */
interface PodmanImage {
  Id: string;
  Digest: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Os: string;
  RootFS: { Type: string; Layers: string[] };
}

async function inspectImage(sb: ClientSandbox, ref: string): Promise<PodmanImage> {
  const { stdout } = await sb.podman(['image', 'inspect', ref]);
  const [img] = JSON.parse(stdout) as PodmanImage[];
  if (!img) throw new Error(`podman image inspect ${ref}: no image`);
  return img;
}

describe.each(['fs', 's3'] as const)('podman against a %s-backed registry', (storage) => {
  let node: TestNode;
  let pusher: ClientSandbox;
  let puller: ClientSandbox;
  let img: Image;
  let layout: string;
  let pushed: string;

  beforeAll(async () => {
    node = await startTestNode({ storage });
    [pusher, puller] = await Promise.all([createClientSandbox(), createClientSandbox()]);
    img = buildImage({ layers: [randomLayer(), randomLayer({ files: 3 })] });
    layout = join(pusher.dir, 'src');
    writeOciLayout(layout, { v1: img });
  });

  afterAll(async () => {
    await pusher?.close();
    await puller?.close();
    await node?.close();
  });

  it('runs in an isolated sandbox (vfs, own root)', async () => {
    const { stdout } = await pusher.podman(['info', '--format', 'json']);
    const info = JSON.parse(stdout) as {
      store: { graphDriverName: string; graphRoot: string };
    };
    expect(info.store.graphDriverName).toBe('vfs');
    expect(info.store.graphRoot.startsWith(pusher.dir)).toBe(true);
  });

  it('pulls an image from an OCI layout into local storage', async () => {
    await pusher.podman(['pull', `oci:${layout}:v1`]);
    const local = await inspectImage(pusher, img.config.digest.split(':')[1]!);
    expect(`sha256:${local.Id}`).toBe(img.config.digest);
    expect(local.RootFS.Layers).toEqual(img.layers.map((l) => l.diffId));
  });

  it('pushes it to the registry', async () => {
    const ref = `${node.host}/podman/app:v1`;
    await pusher.podman(['tag', img.config.digest.split(':')[1]!, ref]);
    const digestFile = pusher.path('push.digest');
    await pusher.podman(['push', '--tls-verify=false', '--digestfile', digestFile, ref]);
    pushed = readFileSync(digestFile, 'utf8').trim();
    expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);

    // What the registry holds under the tag is the manifest podman reported, naming our config.
    const res = await fetch(`${node.url}/v2/podman/app/manifests/v1`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(digestOf(body)).toBe(pushed);
    expect(res.headers.get('docker-content-digest')).toBe(pushed);
    const manifest = JSON.parse(body.toString('utf8')) as { config: { digest: string } };
    expect(manifest.config.digest).toBe(img.config.digest);
  });

  it('pulls it back into empty storage: same image ID, digest and layers', async () => {
    const ref = `${node.host}/podman/app:v1`;
    await puller.podman(['pull', '--tls-verify=false', ref]);
    const got = await inspectImage(puller, ref);
    expect(`sha256:${got.Id}`).toBe(img.config.digest);
    expect(got.Digest).toBe(pushed);
    expect(got.RepoDigests).toContain(`${node.host}/podman/app@${pushed}`);
    expect(got.RootFS.Layers).toEqual(img.layers.map((l) => l.diffId));
    expect([got.Os, got.Architecture]).toEqual(['linux', 'amd64']);
  });

  it('pulls by digest', async () => {
    const ref = `${node.host}/podman/app@${pushed}`;
    await puller.podman(['rmi', '--all', '--force']);
    await puller.podman(['pull', '--tls-verify=false', ref]);
    const got = await inspectImage(puller, ref);
    expect(got.Digest).toBe(pushed);
    expect(`sha256:${got.Id}`).toBe(img.config.digest);
  });
});
