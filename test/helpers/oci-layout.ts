/**
 * Offline test images for real clients: random tar layers and OCI image layouts written on disk
 * (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), so `skopeo copy oci:DIR:tag docker://...`
 * and `podman pull oci:DIR:tag` work without any network.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export type DigestAlgorithm = 'sha256' | 'sha512';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A content-addressed blob held in memory. */
export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** A gzip-compressed tar layer and the digest of its uncompressed tar (the config's diff_id). */
export interface Layer extends Blob {
  diffId: string;
}

export interface Image {
  /** The manifest as a blob (its bytes are what a registry must store verbatim). */
  manifest: Blob;
  config: Blob;
  layers: Layer[];
  platform: Platform;
}

export interface ImageIndex {
  index: Blob;
  images: Image[];
}

export function digestOf(data: Buffer, alg: DigestAlgorithm = 'sha256'): string {
  return `${alg}:${createHash(alg).update(data).digest('hex')}`;
}

export function toBlob(mediaType: string, data: Buffer, alg: DigestAlgorithm = 'sha256'): Blob {
  return { mediaType, digest: digestOf(data, alg), size: data.length, data };
}

export function descriptor(b: Blob, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType: b.mediaType, digest: b.digest, size: b.size, ...extra };
}

/** One ustar header block (512 bytes). */
function tarHeader(name: string, size: number, type: '0' | '5', mode: number): Buffer {
  const h = Buffer.alloc(512);
  const field = (value: string, offset: number, length: number) =>
    h.write(value, offset, length, 'ascii');
  const octal = (n: number, offset: number, length: number) =>
    field(n.toString(8).padStart(length - 1, '0') + '\0', offset, length);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  field(name, 0, 100);
  octal(mode, 100, 8);
  octal(0, 108, 8); // uid
  octal(0, 116, 8); // gid
  octal(size, 124, 12);
  octal(1_700_000_000, 136, 12); // fixed mtime: layers differ only by their random content
  field('        ', 148, 8); // checksum placeholder (spaces) while summing
  field(type, 156, 1);
  field('ustar\0', 257, 6);
  field('00', 263, 2);
  field('root', 265, 32);
  field('root', 297, 32);
  let sum = 0;
  for (const byte of h) sum += byte;
  field(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** A tar archive (ustar) of the given directories and files, with the two end-of-archive blocks. */
export function tarArchive(entries: { name: string; data?: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.data === undefined) {
      parts.push(tarHeader(e.name.endsWith('/') ? e.name : `${e.name}/`, 0, '5', 0o755));
      continue;
    }
    parts.push(tarHeader(e.name, e.data.length, '0', 0o644), e.data);
    const pad = (512 - (e.data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface LayerOptions {
  /** Number of random files in the layer. Default 2. */
  files?: number;
  /** Bytes per file. Default 4 KiB. */
  fileSize?: number;
  /** Digest algorithm for the blob and its diff_id. Default sha256. */
  algorithm?: DigestAlgorithm;
  mediaType?: string;
}

/**
 * A gzip tar layer of random files under a random directory, so every layer is unique. Random
 * content barely compresses, so the blob is about `files * fileSize` bytes.
 */
export function randomLayer(opts: LayerOptions = {}): Layer {
  const alg = opts.algorithm ?? 'sha256';
  const dir = `layer-${randomBytes(6).toString('hex')}`;
  const entries: { name: string; data?: Buffer }[] = [{ name: dir }];
  for (let i = 0; i < (opts.files ?? 2); i++) {
    entries.push({ name: `${dir}/file-${i}.bin`, data: randomBytes(opts.fileSize ?? 4096) });
  }
  const tar = tarArchive(entries);
  const gz = gzipSync(tar, { level: 1 });
  return { ...toBlob(opts.mediaType ?? OCI_LAYER_GZIP, gz, alg), diffId: digestOf(tar, alg) };
}

export interface ImageOptions {
  /** Layers, bottom first. Default: one small random layer. */
  layers?: Layer[];
  platform?: Platform;
  /** Digest algorithm for the config and the manifest. Default sha256. */
  algorithm?: DigestAlgorithm;
  /** Extra config labels, e.g. to make two otherwise equal images differ. */
  labels?: Record<string, string>;
}

export const LINUX_AMD64: Platform = { os: 'linux', architecture: 'amd64' };

/** An OCI image manifest with a valid config (diff_ids match the layers, so podman accepts it). */
export function buildImage(opts: ImageOptions = {}): Image {
  const alg = opts.algorithm ?? 'sha256';
  const layers = opts.layers ?? [randomLayer({ algorithm: alg })];
  const platform = opts.platform ?? LINUX_AMD64;
  const configJson = {
    created: '2024-01-01T00:00:00Z',
    ...platform,
    config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], Labels: opts.labels ?? {} },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'meridian test' })),
  };
  const config = toBlob(OCI_CONFIG, Buffer.from(JSON.stringify(configJson)), alg);
  const manifestJson = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptor(config),
    layers: layers.map((l) => descriptor(l)),
  };
  const manifest = toBlob(OCI_MANIFEST, Buffer.from(JSON.stringify(manifestJson, null, 2)), alg);
  return { manifest, config, layers, platform };
}

/** An OCI image index over the given images, each descriptor carrying its platform. */
export function buildIndex(images: Image[]): ImageIndex {
  const json = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((img) => descriptor(img.manifest, { platform: img.platform })),
  };
  return { index: toBlob(OCI_INDEX, Buffer.from(JSON.stringify(json, null, 2))), images };
}

export function blobsOf(x: Image | ImageIndex): Blob[] {
  if ('index' in x) return [x.index, ...x.images.flatMap((img) => blobsOf(img))];
  return [x.manifest, x.config, ...x.layers];
}

function blobPath(dir: string, digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return join(dir, 'blobs', alg, hex);
}

/**
 * Writes an OCI image layout at `dir` holding the given images/indexes under their tags
 * (`org.opencontainers.image.ref.name`), for `oci:DIR:TAG`.
 */
export function writeOciLayout(dir: string, tagged: Record<string, Image | ImageIndex>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const manifests: Descriptor[] = [];
  for (const [tag, x] of Object.entries(tagged)) {
    for (const b of blobsOf(x)) {
      const p = blobPath(dir, b.digest);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, b.data);
    }
    const top = 'index' in x ? x.index : x.manifest;
    manifests.push(descriptor(top, { annotations: { 'org.opencontainers.image.ref.name': tag } }));
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
}

/** Reads an OCI image layout: the descriptors of `index.json` and a blob reader. */
export function readOciLayout(dir: string): {
  manifests: Descriptor[];
  blob: (digest: string) => Buffer;
} {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
    manifests: Descriptor[];
  };
  return { manifests: index.manifests, blob: (digest) => readFileSync(blobPath(dir, digest)) };
}
