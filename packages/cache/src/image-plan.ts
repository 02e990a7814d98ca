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
 * The image itself is read first, level by level, up to 8 requests at once (an index's
 * platforms together), and handed to `opts.sketched` — a cold pull through a cache rule answers
 * its manifest then, so only the image's own round trips are the pull's. Then the referrers of
 * every manifest are looked up (8 at once), and the images that refer are read the same way,
 * until nothing new refers. The order of `manifests` is fixed from the graph alone, as a
 * sequential walk would give it.
 */
export async function planImage(
  remote: RemoteRegistry,
  repository: string,
  reference: string,
  opts: { referrers?: boolean; sketched?: (plan: ImagePlan) => void } = {},
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
    return {
      manifest: m,
      children: parsed.children.map((c) => c.digest),
      referrers: [],
      blobs: parsed.blobs,
    };
  };
  /** Reads `digests` and everything they point at; returns the nodes read. */
  const readAll = async (digests: string[]): Promise<Node[]> => {
    const added: Node[] = [];
    let todo = digests.filter((d) => !nodes.has(d));
    while (todo.length > 0) {
      const wanted = [...new Set(todo)];
      if (nodes.size + wanted.length > MAX_MANIFESTS)
        throw new UpstreamError('invalid', `the image has more than ${MAX_MANIFESTS} manifests`);
      const level: Node[] = [];
      for (const n of await batched(wanted, read)) {
        nodes.set(n.manifest.digest, n);
        level.push(n);
      }
      added.push(...level);
      todo = level.flatMap((n) => n.children).filter((d) => !nodes.has(d));
    }
    return added;
  };

  const root = await read(reference);
  nodes.set(root.manifest.digest, root);
  await readAll(root.children);
  opts.sketched?.(ordered(nodes, root));
  if (opts.referrers !== false) {
    const lookup = async (n: Node): Promise<string[]> => {
      n.referrers = (await remote.referrers(repository, n.manifest.digest)).map((r) => r.digest);
      return n.referrers;
    };
    // The root's first, alone: an upstream without the referrers API answers that once, and
    // the other lookups go to the tag schema directly.
    const found = await lookup(root);
    const rest = [...nodes.values()].filter((n) => n !== root);
    for (let ask = [...rest, ...(await readAll(found))]; ask.length > 0;)
      ask = await readAll((await batched(ask, lookup)).flat());
  }
  return ordered(nodes, root);
}

/** `fn` of every item, up to CONCURRENCY at once; the results in order. */
async function batched<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += CONCURRENCY)
    out.push(...(await Promise.all(items.slice(i, i + CONCURRENCY).map(fn))));
  return out;
}

/** The plan of the graph read so far: the order a depth-first walk gives. */
function ordered(nodes: Map<string, Node>, root: Node): ImagePlan {
  // A manifest's children, the manifest, its referrers.
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
