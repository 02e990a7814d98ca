/**
 * Builders for registry test content, held in memory: random blobs, image configs, OCI and Docker
 * manifests, indexes and artifacts (with `subject` and `artifactType`). Every builder returns the
 * exact bytes to push and their digest, so tests can compare what the registry serves.
 */
import { createHash, randomBytes } from 'node:crypto';

export type DigestAlgorithm = 'sha256' | 'sha512';

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** Bytes with their digest: a blob, or anything a descriptor can point at. */
export interface ImageBlob {
  mediaType: string;
  bytes: Buffer;
  digest: string;
  size: number;
}

/** A manifest or index: its exact bytes, digest and the parsed object. */
export interface Manifest extends ImageBlob {
  json: Record<string, unknown>;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
  urls?: string[];
}

export function digestOf(bytes: Buffer | string, alg: DigestAlgorithm = 'sha256'): string {
  return `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
}

export function blobOf(
  bytes: Buffer | string,
  mediaType = MediaTypes.ociLayer as string,
  alg: DigestAlgorithm = 'sha256',
): ImageBlob {
  const b = Buffer.from(bytes);
  return { mediaType, bytes: b, digest: digestOf(b, alg), size: b.length };
}

/** Random bytes (64 by default): a layer no other test shares. */
export function randomBlob(
  size = 64,
  mediaType = MediaTypes.ociLayer as string,
  alg: DigestAlgorithm = 'sha256',
): ImageBlob {
  return blobOf(randomBytes(size), mediaType, alg);
}

/** An image config with a random author, so every call has a new digest. */
export function configBlob(opts: { docker?: boolean; alg?: DigestAlgorithm } = {}): ImageBlob {
  const config = {
    architecture: 'amd64',
    os: 'linux',
    author: randomBytes(8).toString('hex'),
    rootfs: { type: 'layers', diff_ids: [] },
  };
  return blobOf(
    JSON.stringify(config, null, '\t'),
    opts.docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig,
    opts.alg,
  );
}

/** The OCI empty descriptor's content, `{}`. */
export const emptyJson: ImageBlob = blobOf('{}', MediaTypes.ociEmpty);

export function descriptor(x: ImageBlob, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType: x.mediaType, digest: x.digest, size: x.size, ...extra };
}

function manifestOf(
  json: Record<string, unknown>,
  mediaType: string,
  alg: DigestAlgorithm,
  indent?: string,
): Manifest {
  const bytes = Buffer.from(JSON.stringify(json, null, indent));
  return { mediaType, bytes, digest: digestOf(bytes, alg), size: bytes.length, json };
}

export interface ManifestOptions {
  config: ImageBlob | Descriptor;
  layers?: (ImageBlob | Descriptor)[];
  subject?: ImageBlob | Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Omit the `mediaType` field (allowed by the image spec). */
  omitMediaType?: boolean;
  /** Extra top-level fields (unknown fields must be stored byte for byte). */
  extra?: Record<string, unknown>;
  alg?: DigestAlgorithm;
  /** Pretty-print with this indent, as the conformance suite does with tabs. */
  indent?: string;
}

const toDescriptor = (x: ImageBlob | Descriptor): Descriptor => ('bytes' in x ? descriptor(x) : x);

/** An OCI image manifest. */
export function imageManifest(opts: ManifestOptions): Manifest {
  const json: Record<string, unknown> = { schemaVersion: 2 };
  if (!opts.omitMediaType) json.mediaType = MediaTypes.ociManifest;
  if (opts.artifactType) json.artifactType = opts.artifactType;
  json.config = toDescriptor(opts.config);
  json.layers = (opts.layers ?? []).map(toDescriptor);
  if (opts.subject) json.subject = toDescriptor(opts.subject);
  if (opts.annotations) json.annotations = opts.annotations;
  Object.assign(json, opts.extra);
  return manifestOf(json, MediaTypes.ociManifest, opts.alg ?? 'sha256', opts.indent);
}

/** A Docker schema 2 manifest. */
export function dockerManifest(opts: { config: ImageBlob; layers: ImageBlob[] }): Manifest {
  const json = {
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifest,
    config: descriptor(opts.config),
    layers: opts.layers.map((l) => descriptor(l)),
  };
  return manifestOf(json, MediaTypes.dockerManifest, 'sha256');
}

export interface IndexOptions {
  manifests: (Manifest | Descriptor)[];
  subject?: ImageBlob | Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  docker?: boolean;
  alg?: DigestAlgorithm;
}

/** An OCI image index (or a Docker manifest list). Children get linux platforms by default. */
export function imageIndex(opts: IndexOptions): Manifest {
  const mediaType = opts.docker ? MediaTypes.dockerManifestList : MediaTypes.ociIndex;
  const arches = ['amd64', 'arm64', 'ppc64le', 's390x'];
  const json: Record<string, unknown> = { schemaVersion: 2, mediaType };
  if (opts.artifactType) json.artifactType = opts.artifactType;
  json.manifests = opts.manifests.map((m, i) =>
    'bytes' in m
      ? descriptor(m, { platform: { os: 'linux', architecture: arches[i % arches.length]! } })
      : m,
  );
  if (opts.subject) json.subject = toDescriptor(opts.subject);
  if (opts.annotations) json.annotations = opts.annotations;
  return manifestOf(json, mediaType, opts.alg ?? 'sha256');
}

/** A complete image: config, layers and manifest, plus the blobs to push first. */
export interface Image {
  config: ImageBlob;
  layers: ImageBlob[];
  manifest: Manifest;
  blobs: ImageBlob[];
}

export function image(
  opts: { layers?: number; layerSize?: number; docker?: boolean; alg?: DigestAlgorithm } = {},
): Image {
  const alg = opts.alg ?? 'sha256';
  const config = configBlob({ docker: opts.docker, alg });
  const layerType = opts.docker ? MediaTypes.dockerLayer : MediaTypes.ociLayerGzip;
  const layers = Array.from({ length: opts.layers ?? 1 }, () =>
    randomBlob(opts.layerSize ?? 64, layerType, alg),
  );
  const manifest = opts.docker
    ? dockerManifest({ config, layers })
    : imageManifest({ config, layers, alg });
  return { config, layers, manifest, blobs: [config, ...layers] };
}

/**
 * An artifact that refers to `subject`: the 1.1 form (`artifactType` set, empty config) by
 * default, or the older form where the config media type carries the type (`configType: true`).
 */
export function artifact(opts: {
  subject: ImageBlob | Descriptor;
  artifactType: string;
  annotations?: Record<string, string>;
  configType?: boolean;
}): { manifest: Manifest; blobs: ImageBlob[] } {
  const payload = randomBlob(32, opts.artifactType);
  if (opts.configType) {
    const config = blobOf(payload.bytes, opts.artifactType);
    const manifest = imageManifest({
      config,
      layers: [emptyJson],
      subject: opts.subject,
      annotations: opts.annotations,
    });
    return { manifest, blobs: [config, emptyJson] };
  }
  const manifest = imageManifest({
    artifactType: opts.artifactType,
    config: emptyJson,
    layers: [payload],
    subject: opts.subject,
    annotations: opts.annotations,
  });
  return { manifest, blobs: [emptyJson, payload] };
}
