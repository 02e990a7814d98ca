import { MediaTypes } from '@meridian/oci';
import type { V2Context } from '../http/context';
import { queryParam } from '../http/query';
import { API_VERSION_HEADER, sendJson } from '../http/send';

/** `GET /v2/<name>/referrers/<digest>?artifactType=` — an image index, empty for an unknown subject. */
export async function listReferrers({ res, url, name, param, registry }: V2Context): Promise<void> {
  const artifactType = queryParam(url, 'artifactType');
  const manifests = await registry.manifests.referrers(name, param, artifactType);
  const headers: Record<string, string> = { ...API_VERSION_HEADER };
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  sendJson(
    res,
    200,
    { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests },
    headers,
    MediaTypes.ociIndex,
  );
}
