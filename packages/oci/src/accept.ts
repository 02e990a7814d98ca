/**
 * Whether a stored manifest of `mediaType` may be served to a client whose `Accept` header is
 * `accept`. Like distribution, a registry serves what it stores: an absent or wildcard Accept takes
 * anything; an explicit list without this type is refused (the client would misread it).
 * Docker schema 2 and OCI manifests are never converted; a refused client gets MANIFEST_UNKNOWN.
 */
export function acceptsMediaType(
  accept: string | string[] | undefined,
  mediaType: string,
): boolean {
  if (accept === undefined) return true;
  const entries = (Array.isArray(accept) ? accept : [accept])
    .flatMap((h) => h.split(','))
    .map((e) => e.split(';')[0]!.trim().toLowerCase())
    .filter((e) => e.length > 0);
  if (entries.length === 0) return true;
  for (const e of entries) {
    if (e === '*/*' || e === 'application/*' || e === mediaType) return true;
    // Clients that only ask for JSON get whatever JSON manifest is stored.
    if (e === 'application/json') return true;
  }
  return false;
}
