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

/** How many manifest requests one plan has in flight at most. */
const CONCURRENCY = 8;

interface Node {
  manifest: RemoteManifest;
  children: string[];
  referrers: string[];
  blobs: Descriptor[];
}

/**
 * Reads an image from `remote`: the manifest or index at `reference`, every manifest it points
 * at, every referrer of each of them (the referrers API or the tag schema), and the descriptors
 * of every blob. Manifests are digest-verified by `RemoteRegistry`; no blob is read here.
 *
 * The graph is read level by level, up to 8 requests at once (an index's platforms and each
 * manifest's referrers lookup together): a cold pull through a cache rule answers its manifest
 * once the plan is read, so its round trips are the pull's. The order of `manifests` is then
 * fixed from the graph alone, as a sequential walk would give it.
 */
export async function planImage(
  remote: RemoteRegistry,
  repository: string,
  reference: string,
  opts: { referrers?: boolean } = {},
): Promise<ImagePlan> {
  const nodes = new Map<string, Node>();
  const read = async (ref: string): Promise<Node> => {
    const m = await remote.manifest(repository, ref);
    if (!m)
      throw new UpstreamError(
        'not-found',
        `${remote.host} has no manifest ${repository}${ref.includes(':') ? '@' : ':'}${ref.slice(0, 80)}`,
      );
    let parsed;
    try {
      parsed = parseManifest(m.bytes, m.mediaType);
    } catch (err) {
      throw new UpstreamError(
        'invalid',
        `${remote.host} sent an invalid manifest ${m.digest}: ${(err as Error).message}`,
      );
    }
    const referrers =
      opts.referrers === false
        ? []
        : (await remote.referrers(repository, m.digest)).map((r) => r.digest);
    return {
      manifest: m,
      children: parsed.children.map((c) => c.digest),
      referrers,
      blobs: parsed.blobs,
    };
  };

  const root = await read(reference);
  nodes.set(root.manifest.digest, root);
  let level = [root];
  while (level.length > 0) {
    const wanted = new Set<string>();
    for (const n of level)
      for (const d of [...n.children, ...n.referrers]) if (!nodes.has(d)) wanted.add(d);
    if (nodes.size + wanted.size > MAX_MANIFESTS)
      throw new UpstreamError('invalid', `the image has more than ${MAX_MANIFESTS} manifests`);
    const todo = [...wanted];
    level = [];
    for (let i = 0; i < todo.length; i += CONCURRENCY) {
      for (const n of await Promise.all(todo.slice(i, i + CONCURRENCY).map((d) => read(d)))) {
        nodes.set(n.manifest.digest, n);
        level.push(n);
      }
    }
  }

  // The order a depth-first walk gives: a manifest's children, the manifest, its referrers.
  const manifests: RemoteManifest[] = [];
  const blobs = new Map<string, Descriptor>();
  const placed = new Set<string>();
  let referrers = 0;
  const place = (digest: string, isReferrer: boolean): void => {
    if (placed.has(digest)) return;
    placed.add(digest);
    const n = nodes.get(digest)!;
    for (const c of n.children) place(c, false);
    for (const b of n.blobs) if (!blobs.has(b.digest)) blobs.set(b.digest, b);
    manifests.push(n.manifest);
    if (isReferrer) referrers++;
    for (const r of n.referrers) place(r, true);
  };
  place(root.manifest.digest, false);
  return { root: root.manifest, manifests, blobs: [...blobs.values()], referrers };
}
