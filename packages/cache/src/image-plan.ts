import { parseManifest, type Descriptor } from '@meridian/oci';
import type { RemoteManifest, RemoteRegistry } from './remote-registry';
import { UpstreamError } from './upstream-error';

/** Everything one image is made of, read from its registry, in the order it can be written. */
export interface ImagePlan {
  /** The image's own manifest or index. */
  root: RemoteManifest;
  /**
   * Every manifest, each after the manifests it points at: platform manifests, the root, then
   * what refers to them (signatures, SBOMs, and what refers to those).
   */
  manifests: RemoteManifest[];
  /** Every blob (configs and layers) the manifests need, once each. */
  blobs: Descriptor[];
  /** How many of `manifests` are referrers. */
  referrers: number;
}

/** Bounds a hostile or broken upstream: an image of more manifests than this is refused. */
const MAX_MANIFESTS = 1000;

/**
 * Reads an image from `remote`: the manifest or index at `reference`, every manifest it points
 * at, every referrer of each of them (the referrers API or the tag schema), and the descriptors
 * of every blob. Manifests are digest-verified by `RemoteRegistry`; no blob is read here.
 */
export async function planImage(
  remote: RemoteRegistry,
  repository: string,
  reference: string,
  opts: { referrers?: boolean } = {},
): Promise<ImagePlan> {
  const manifests: RemoteManifest[] = [];
  const blobs = new Map<string, Descriptor>();
  const seen = new Set<string>();
  let referrers = 0;

  const visit = async (ref: string, isReferrer: boolean): Promise<RemoteManifest> => {
    const m = await remote.manifest(repository, ref);
    if (!m)
      throw new UpstreamError(
        'not-found',
        `${remote.host} has no manifest ${repository}${ref.includes(':') ? '@' : ':'}${ref.slice(0, 80)}`,
      );
    seen.add(m.digest);
    if (seen.size > MAX_MANIFESTS)
      throw new UpstreamError('invalid', `the image has more than ${MAX_MANIFESTS} manifests`);
    let parsed;
    try {
      parsed = parseManifest(m.bytes, m.mediaType);
    } catch (err) {
      throw new UpstreamError(
        'invalid',
        `${remote.host} sent an invalid manifest ${m.digest}: ${(err as Error).message}`,
      );
    }
    for (const child of parsed.children) {
      if (seen.has(child.digest)) continue;
      await visit(child.digest, false);
    }
    for (const b of parsed.blobs) if (!blobs.has(b.digest)) blobs.set(b.digest, b);
    manifests.push(m);
    if (isReferrer) referrers++;
    if (opts.referrers !== false)
      for (const r of await remote.referrers(repository, m.digest)) {
        if (seen.has(r.digest)) continue;
        await visit(r.digest, true);
      }
    return m;
  };

  const root = await visit(reference, false);
  return { root, manifests, blobs: [...blobs.values()], referrers };
}
