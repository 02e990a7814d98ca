import { OciError } from './errors';
import { tryParseDigest } from './digest';
import { checkPushedFields } from './manifest-fields';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaTypes, isSchema1 } from './media-types';

/** Largest manifest body accepted, as the spec recommends (4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: unknown;
}

/** What the registry needs to know about a manifest it stores. */
export interface ParsedManifest {
  mediaType: string;
  /** Blobs this manifest needs (config and layers); foreign layers with URLs excluded. */
  blobs: Descriptor[];
  /** Manifests an index points at. */
  children: Descriptor[];
  subject?: Descriptor;
  /** The artifact type the referrers API reports for this manifest. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

const NON_DISTRIBUTABLE = [
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
];

function invalid(message: string): OciError {
  return new OciError('MANIFEST_INVALID', message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isRecord(v)) throw invalid(`${where}: descriptor must be an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType.length === 0)
    throw invalid(`${where}: mediaType must be a non-empty string`);
  if (typeof digest !== 'string' || !tryParseDigest(digest))
    throw invalid(`${where}: invalid digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw invalid(`${where}: size must be a non-negative integer`);
  const d: Descriptor = { mediaType, digest, size };
  if (Array.isArray(v.urls)) d.urls = v.urls.filter((u): u is string => typeof u === 'string');
  if (isRecord(v.annotations)) d.annotations = v.annotations as Record<string, string>;
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (v.platform !== undefined) d.platform = v.platform;
  return d;
}

function descriptorList(v: unknown, where: string): Descriptor[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(`${where} must be an array`);
  return v.map((x, i) => parseDescriptor(x, `${where}[${i}]`));
}

/** Picks the media type: Content-Type, else the body's `mediaType`, else by shape. */
function resolveMediaType(contentType: string | undefined, body: Record<string, unknown>): string {
  const ct = contentType?.split(';')[0]?.trim();
  const declared = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  if (ct && isSchema1(ct))
    throw invalid('Docker schema 1 manifests are not supported; push schema 2 or OCI');
  if (declared && isSchema1(declared))
    throw invalid('Docker schema 1 manifests are not supported; push schema 2 or OCI');
  if (body.schemaVersion === 1)
    throw invalid('Docker schema 1 manifests are not supported; push schema 2 or OCI');
  // A Content-Type the registry does not store is refused even when the body names a known type.
  if (
    ct &&
    !MANIFEST_MEDIA_TYPES.includes(ct) &&
    ct !== 'application/json' &&
    ct !== 'application/octet-stream'
  )
    throw invalid(`unsupported manifest media type: ${ct}`);
  if (ct && MANIFEST_MEDIA_TYPES.includes(ct)) {
    if (declared && declared !== ct)
      throw invalid(`manifest mediaType ${declared} does not match Content-Type ${ct}`);
    return ct;
  }
  if (declared) {
    if (!MANIFEST_MEDIA_TYPES.includes(declared))
      throw invalid(`unsupported manifest media type: ${declared}`);
    return declared;
  }
  if (Array.isArray(body.manifests)) return MediaTypes.ociIndex;
  if (isRecord(body.config)) return MediaTypes.ociManifest;
  throw invalid('cannot determine the manifest media type');
}

/**
 * Parses and validates a manifest body. Throws `MANIFEST_INVALID` (or `MANIFEST_TOO_LARGE`)
 * with a message naming what is wrong.
 */
export function parseManifest(bytes: Buffer, contentType?: string): ParsedManifest {
  return fromBody(readBody(bytes), contentType);
}

/**
 * `parseManifest` for a manifest being pushed, which is also held to the image spec's types of
 * its optional fields (`checkPushedFields`); stored manifests are read with `parseManifest`.
 */
export function parsePushedManifest(bytes: Buffer, contentType?: string): ParsedManifest {
  const body = readBody(bytes);
  const parsed = fromBody(body, contentType);
  checkPushedFields(body);
  return parsed;
}

function readBody(bytes: Buffer): Record<string, unknown> {
  if (bytes.length > MAX_MANIFEST_BYTES)
    throw new OciError(
      'SIZE_INVALID',
      `manifest is larger than the limit of ${MAX_MANIFEST_BYTES} bytes`,
      undefined,
      413,
    );
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('manifest is not valid JSON');
  }
  if (!isRecord(body)) throw invalid('manifest must be a JSON object');
  return body;
}

function fromBody(body: Record<string, unknown>, contentType?: string): ParsedManifest {
  const mediaType = resolveMediaType(contentType, body);
  if (body.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  const annotations = isRecord(body.annotations)
    ? (body.annotations as Record<string, string>)
    : undefined;
  const subject = body.subject === undefined ? undefined : parseDescriptor(body.subject, 'subject');
  const declaredArtifactType =
    typeof body.artifactType === 'string' ? body.artifactType : undefined;

  if (INDEX_MEDIA_TYPES.includes(mediaType)) {
    if (!Array.isArray(body.manifests)) throw invalid('an index must have a manifests array');
    const children = descriptorList(body.manifests, 'manifests');
    return {
      mediaType,
      blobs: [],
      children,
      subject,
      artifactType: declaredArtifactType,
      annotations,
    };
  }
  if (!isRecord(body.config)) throw invalid('an image manifest must have a config descriptor');
  const config = parseDescriptor(body.config, 'config');
  if (body.layers === undefined && mediaType === MediaTypes.dockerManifest)
    throw invalid('layers must be an array');
  const layers = descriptorList(body.layers, 'layers');
  const blobs = [
    config,
    ...layers.filter((l) => !(l.urls?.length && NON_DISTRIBUTABLE.includes(l.mediaType))),
  ];
  return {
    mediaType,
    blobs,
    children: [],
    subject,
    artifactType: declaredArtifactType ?? config.mediaType,
    annotations,
  };
}
