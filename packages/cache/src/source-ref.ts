import { isDigestLike, isValidName, isValidTag, OciError, tryParseDigest } from '@meridian/oci';

/** An image in another registry: `REGISTRY/REPO[:TAG|@DIGEST]`, as `docker pull` reads it. */
export interface SourceRef {
  /** The registry's host (and port) as written: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Where its distribution API is: `https://registry-1.docker.io`, `http://127.0.0.1:5000`. */
  baseUrl: string;
  repository: string;
  /** A tag or a digest; `latest` when neither was given. */
  reference: string;
}

const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * Reads `REGISTRY/REPO[:TAG|@DIGEST]`. The first component is a registry when it has a `.` or
 * a `:` or is `localhost` (Docker's rule); otherwise the registry is Docker Hub, where a
 * one-component name lives under `library/`. An `http://` or `https://` prefix picks the
 * scheme; without one, loopback registries are spoken to over HTTP and every other over HTTPS.
 */
export function parseSourceRef(input: string): SourceRef {
  const bad = (why: string) =>
    new OciError('NAME_INVALID', `invalid source ${JSON.stringify(input.slice(0, 200))}: ${why}`);
  let rest = input.trim();
  let scheme: string | undefined;
  const m = /^(https?):\/\//.exec(rest);
  if (m) {
    scheme = m[1];
    rest = rest.slice(m[0].length);
  }
  let reference = 'latest';
  const at = rest.indexOf('@');
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!tryParseDigest(reference)) throw bad('the part after @ is not a digest');
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon > rest.lastIndexOf('/')) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
      if (!isValidTag(reference)) throw bad('invalid tag');
    }
  }
  const parts = rest.split('/');
  const first = parts[0] ?? '';
  const hasRegistry =
    parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasRegistry ? first : 'docker.io';
  let repository = (hasRegistry ? parts.slice(1) : parts).join('/');
  if (DOCKER_HUB.has(registry)) {
    registry = 'docker.io';
    if (!repository.includes('/')) repository = `library/${repository}`;
  }
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(registry))
    throw bad('invalid registry host');
  if (!isValidName(repository)) throw bad('invalid repository name');
  const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
  const proto = scheme ?? (isLoopback(registry) ? 'http' : 'https');
  return { registry, baseUrl: `${proto}://${host}`, repository, reference };
}

/** `repo:tag` or `repo@digest` for messages. */
export function formatRef(repository: string, reference: string): string {
  return isDigestLike(reference) ? `${repository}@${reference}` : `${repository}:${reference}`;
}

/** A local target `REPO[:TAG]` (`--image`): the tag defaults to the source's tag. */
export function parseTarget(
  input: string,
  defaultTag: string | undefined,
): {
  repository: string;
  tag?: string;
} {
  const colon = input.lastIndexOf(':');
  const repository = colon > input.lastIndexOf('/') ? input.slice(0, colon) : input;
  const tag = colon > input.lastIndexOf('/') ? input.slice(colon + 1) : defaultTag;
  if (!isValidName(repository))
    throw new OciError('NAME_INVALID', `invalid target repository: ${repository.slice(0, 200)}`);
  if (tag !== undefined && !isValidTag(tag))
    throw new OciError('NAME_INVALID', `invalid target tag: ${tag.slice(0, 140)}`);
  return tag === undefined ? { repository } : { repository, tag };
}

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '');
  return h === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '[::1]';
}
