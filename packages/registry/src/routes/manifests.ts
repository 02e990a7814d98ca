import { acceptsMediaType, MAX_MANIFEST_BYTES, OciError } from '@meridian/oci';
import type { RevisionRecord } from '@meridian/storage';
import type { V2Context } from '../http/context';
import type { Actor } from '../domain/events';
import { REPLICA_USER_AGENT } from '../domain/upstream';
import { readLimited } from '../http/body';
import { API_VERSION_HEADER, sendEmpty } from '../http/send';
import { cacheHeader } from '../http/cache-header';

/** `GET`/`HEAD /v2/<name>/manifests/<reference>` */
export async function getManifest(ctx: V2Context): Promise<void> {
  const { req, res, name, param, registry } = ctx;
  const head = req.method === 'HEAD';
  const countPull = !head && !isReplicaRead(ctx.request.actor);
  // A hot tag is answered from the node's cache without a promise when nothing needs storage
  // or a decision (ManifestStore.peek); otherwise the full read.
  const m: RevisionRecord & { bytes?: Buffer } =
    registry.manifests.peek(name, param, countPull) ??
    (head
      ? await registry.manifests.resolve(name, param)
      : await registry.manifests.get(name, param, countPull));
  if (!acceptsMediaType(req.headers.accept, m.mediaType))
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `manifest is ${m.mediaType}, which the Accept header does not allow`,
      { mediaType: m.mediaType },
    );
  res.writeHead(200, {
    ...API_VERSION_HEADER,
    'Content-Type': m.mediaType,
    'Content-Length': m.size,
    'Docker-Content-Digest': m.digest,
    ETag: `"${m.digest}"`,
    ...cacheHeader(m),
  });
  res.end(head ? undefined : m.bytes);
}

/**
 * A replica reading from the primary on a miss: the replica counts that pull in its own region,
 * so the primary must not count it again. With auth on, only a node token says so; with auth
 * off (every caller anonymous) the replica's User-Agent does — a client that copies it only
 * stops its own pulls from being counted.
 */
function isReplicaRead(actor: Actor): boolean {
  if (actor.kind === 'node') return true;
  return actor.kind === 'anonymous' && actor.userAgent === REPLICA_USER_AGENT;
}

/** `PUT /v2/<name>/manifests/<reference>` */
export async function putManifest({ req, res, name, param, registry }: V2Context): Promise<void> {
  const bytes = await readLimited(req, MAX_MANIFEST_BYTES);
  const r = await registry.manifests.put(name, param, bytes, req.headers['content-type']);
  const headers: Record<string, string> = {
    ...API_VERSION_HEADER,
    Location: `/v2/${name}/manifests/${r.digest}`,
    'Docker-Content-Digest': r.digest,
  };
  if (r.subject) headers['OCI-Subject'] = r.subject;
  sendEmpty(res, 201, headers);
}

/** `DELETE /v2/<name>/manifests/<reference>` — a digest deletes the manifest, a tag the tag. */
export async function deleteManifest({ res, name, param, registry }: V2Context): Promise<void> {
  await registry.manifests.delete(name, param);
  sendEmpty(res, 202, API_VERSION_HEADER);
}
