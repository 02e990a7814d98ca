import { OciError } from './errors';

/** RFC 6838 `type/subtype` (restricted-name characters), as the image spec requires. */
const MEDIA_TYPE = /^[A-Za-z0-9][\w!#$&^.+-]{0,126}\/[A-Za-z0-9][\w!#$&^.+-]{0,126}$/;

type Json = Record<string, unknown>;

const isRecord = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const absent = (v: unknown) => v === undefined || v === null;
const invalid = (message: string) => new OciError('MANIFEST_INVALID', message);

/**
 * Checks the image spec's typed optional fields of a manifest being pushed: `mediaType`,
 * `artifactType`, `annotations` (a map of strings), and in every descriptor `urls`,
 * `annotations`, `artifactType` and `platform`. A field of the wrong type is refused, never
 * stored as sent: the registry hands these fields back to every client (the referrers index
 * carries `annotations` and `artifactType`), and a client that decodes them as the spec types
 * them (Go's `map[string]string`: oras, cosign, containerd) fails on the whole response. `null`
 * is absent, as in Go's decoding.
 *
 * Only a push is held to this: manifests already stored are read as they are (replication, GC
 * and purge must keep handling what an earlier version accepted).
 */
export function checkPushedFields(body: Json): void {
  if (!absent(body.mediaType) && typeof body.mediaType !== 'string')
    throw invalid('mediaType must be a string');
  checkArtifactType(body.artifactType, '');
  checkAnnotations(body.annotations, '');
  if (isRecord(body.config)) checkDescriptor(body.config, 'config');
  if (isRecord(body.subject)) checkDescriptor(body.subject, 'subject');
  for (const list of ['layers', 'manifests'] as const) {
    const v = body[list];
    if (Array.isArray(v))
      v.forEach((d, i) => {
        if (isRecord(d)) checkDescriptor(d, `${list}[${i}]`);
      });
  }
}

function checkDescriptor(d: Json, where: string): void {
  checkStrings(d.urls, `${where}.urls`);
  checkAnnotations(d.annotations, `${where}.`);
  checkArtifactType(d.artifactType, `${where}.`);
  if (absent(d.platform)) return;
  const p = d.platform;
  if (!isRecord(p) || typeof p.architecture !== 'string' || typeof p.os !== 'string')
    throw invalid(`${where}.platform must be an object with architecture and os strings`);
  for (const k of ['os.version', 'variant'])
    if (!absent(p[k]) && typeof p[k] !== 'string')
      throw invalid(`${where}.platform.${k} must be a string`);
  checkStrings(p['os.features'], `${where}.platform.os.features`);
  checkStrings(p.features, `${where}.platform.features`);
}

function checkAnnotations(v: unknown, where: string): void {
  if (!absent(v) && !(isRecord(v) && Object.values(v).every((x) => typeof x === 'string')))
    throw invalid(`${where}annotations must be an object of strings`);
}

function checkArtifactType(v: unknown, where: string): void {
  if (!absent(v) && !(typeof v === 'string' && MEDIA_TYPE.test(v)))
    throw invalid(`${where}artifactType must be a media type (type/subtype)`);
}

function checkStrings(v: unknown, what: string): void {
  if (!absent(v) && !(Array.isArray(v) && v.every((x) => typeof x === 'string')))
    throw invalid(`${what} must be an array of strings`);
}
