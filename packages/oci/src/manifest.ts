import { OciError } from './errors';
import { tryParseDigest } from './digest';
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

/** RFC 6838 `type/subtype` (restricted-name characters), as the image spec requires. */
const MEDIA_TYPE = /^[A-Za-z0-9][\w!#$&^.+-]{0,126}\/[A-Za-z0-9][\w!#$&^.+-]{0,126}$/;

/*
 * The typed optional fields of the image spec. A field of the wrong type is refused, never
 * dropped or stored as sent: the registry hands these fields back to every client (the
 * referrers index carries `annotations` and `artifactType`), and a client that decodes them as
 * the spec types them (Go's `map[string]string`) fails on the whole response. `null` is absent,
 * as in Go's decoding.
 */
function annotationsOf(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v) || !Object.values(v).every((x) => typeof x === 'string'))
    throw invalid(`${where}annotations must be an object of strings`);
  return v as Record<string, string>;
}

function artifactTypeOf(v: unknown, where: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !MEDIA_TYPE.test(v))
    throw invalid(`${where}artifactType must be a media type (type/subtype)`);
  return v;
}

function stringsOf(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string'))
    throw invalid(`${what} must be an array of strings`);
  return v;
}

function platformOf(v: unknown, where: string): unknown {
  if (v === undefined || v === null) return undefined;
  const p = isRecord(v) ? v : undefined;
  if (!p || typeof p.architecture !== 'string' || typeof p.os !== 'string')
    throw invalid(`${where}platform must be an object with architecture and os strings`);
  for (const k of ['os.version', 'variant'])
    if (p[k] !== undefined && p[k] !== null && typeof p[k] !== 'string')
      throw invalid(`${where}platform.${k} must be a string`);
  stringsOf(p['os.features'], `${where}platform.os.features`);
  stringsOf(p.features, `${where}platform.features`);
  return p;
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
  const urls = stringsOf(v.urls, `${where}.urls`);
  if (urls) d.urls = urls;
  const annotations = annotationsOf(v.annotations, `${where}.`);
  if (annotations) d.annotations = annotations;
  const artifactType = artifactTypeOf(v.artifactType, `${where}.`);
  if (artifactType !== undefined) d.artifactType = artifactType;
  const platform = platformOf(v.platform, `${where}.`);
  if (platform !== undefined) d.platform = platform;
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
  if (body.mediaType !== undefined && body.mediaType !== null && typeof body.mediaType !== 'string')
    throw invalid('mediaType must be a string');
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
  const mediaType = resolveMediaType(contentType, body);
  if (body.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  const annotations = annotationsOf(body.annotations, '');
  const subject = body.subject === undefined ? undefined : parseDescriptor(body.subject, 'subject');
  const declaredArtifactType = artifactTypeOf(body.artifactType, '');

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
