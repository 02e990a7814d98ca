/**
 * Real registries on loopback for the import and cache-rule suites: CNCF Distribution (Debian's
 * `docker-registry`) behind htpasswd Basic auth (bcrypt), and a pusher that speaks to any
 * registry with one Authorization header.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports';
import { noteSecret } from '../helpers/log-scan';
import { artifact, image, imageIndex, type ImageBlob, type Manifest } from '../helpers/images';

export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';

export interface Distribution {
  url: string;
  host: string;
  user: string;
  password: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Distribution with htpasswd auth (one bcrypt user) on a free loopback port. */
export async function startDistribution(): Promise<Distribution> {
  if (!existsSync(DISTRIBUTION_BIN))
    throw new Error(`${DISTRIBUTION_BIN} is missing (apt: docker-registry)`);
  const dir = mkdtempSync(join(tmpdir(), 'meridian-distribution-'));
  const user = 'puller';
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  noteSecret(password);
  const htpasswd = execFileSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' });
  writeFileSync(join(dir, 'htpasswd'), htpasswd);
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'auth:',
      '  htpasswd:',
      '    realm: distribution',
      `    path: ${join(dir, 'htpasswd')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const url = `http://127.0.0.1:${port}`;
  const d: Distribution = {
    url,
    host: `127.0.0.1:${port}`,
    user,
    password,
    start: async () => {
      child = spawn(DISTRIBUTION_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      for (let i = 0; i < 200; i++) {
        const ok = await fetch(`${url}/v2/`).then(
          (r) => r.status === 401,
          () => false,
        );
        if (ok) return;
        if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`docker-registry did not start: ${stderr}`);
    },
    stop: async () => {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    },
    close: async () => {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await d.start();
  return d;
}

/** Pushes blobs and manifests to a registry with one Authorization header (Basic works on both). */
export class Pusher {
  constructor(
    readonly url: string,
    private readonly authorization: string,
  ) {}

  async blob(repo: string, b: ImageBlob): Promise<void> {
    const post = await fetch(`${this.url}/v2/${repo}/blobs/uploads/`, {
      method: 'POST',
      headers: { Authorization: this.authorization },
    });
    if (post.status !== 202) throw new Error(`POST upload: ${post.status} ${await post.text()}`);
    const loc = new URL(post.headers.get('location')!, this.url);
    loc.searchParams.set('digest', b.digest);
    const put = await fetch(loc, {
      method: 'PUT',
      headers: { Authorization: this.authorization, 'Content-Type': 'application/octet-stream' },
      body: b.bytes,
    });
    if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${await put.text()}`);
  }

  async manifest(repo: string, reference: string, m: Manifest): Promise<void> {
    const res = await fetch(`${this.url}/v2/${repo}/manifests/${reference}`, {
      method: 'PUT',
      headers: { Authorization: this.authorization, 'Content-Type': m.mediaType },
      body: m.bytes,
    });
    if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${await res.text()}`);
  }
}

/** A two-platform index with a signature that refers to it. */
export interface SignedIndex {
  index: Manifest;
  platforms: Manifest[];
  signature: Manifest;
  /** Every blob (configs, layers, the signature's payload and config). */
  blobs: ImageBlob[];
}

export function signedIndex(layerSize = 4096): SignedIndex {
  const a = image({ layers: 2, layerSize });
  const b = image({ layers: 1, layerSize });
  const index = imageIndex({ manifests: [a.manifest, b.manifest] });
  const sig = artifact({
    subject: index,
    artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  });
  return {
    index,
    platforms: [a.manifest, b.manifest],
    signature: sig.manifest,
    blobs: [...a.blobs, ...b.blobs, ...sig.blobs],
  };
}

/**
 * Pushes `img` to `repo:tag`. With `tagSchema`, the signature is also listed in the
 * `sha256-<hex>` index registries without the referrers API use (Distribution 2.8).
 */
export async function pushSignedIndex(
  p: Pusher,
  repo: string,
  tag: string,
  img: SignedIndex,
  tagSchema: boolean,
): Promise<void> {
  for (const b of img.blobs) await p.blob(repo, b);
  for (const m of img.platforms) await p.manifest(repo, m.digest, m);
  await p.manifest(repo, tag, img.index);
  await p.manifest(repo, img.signature.digest, img.signature);
  if (tagSchema) {
    const list = imageIndex({
      manifests: [
        {
          mediaType: img.signature.mediaType,
          digest: img.signature.digest,
          size: img.signature.size,
          artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        },
      ],
    });
    await p.manifest(repo, img.index.digest.replace(':', '-'), list);
  }
}
