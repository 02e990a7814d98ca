import { OciError, parseDigest, parseManifest, type Digest } from '@meridian/oci';
import { isNotFound, type RepositoryLayout } from '@meridian/storage';

/** What one repository holds and references, as the mark phase found it. */
export interface RepositoryMark {
  repository: string;
  /** Blobs the repository's manifests reference (layers, configs; children's too). */
  referenced: Set<string>;
  /** Manifest revisions (every one is a root: untagged manifests are retention's, not GC's). */
  revisions: Set<string>;
  /** Soft-deleted manifests (ADR 0017): roots too, until their tombstone is purged. */
  tombstones: Set<string>;
  layers: { digest: Digest; modified: Date }[];
  referrers: { subject: Digest; digest: Digest; modified: Date }[];
  /** Manifests whose content could not be read or parsed: the repository's links are all kept. */
  unreadable: string[];
  /**
   * Digests its manifests reference that it neither links nor holds as a revision (a child or a
   * layer deleted by hand from under a manifest): live only through this repository's mark.
   */
  dangling: string[];
}

export interface Mark {
  repositories: RepositoryMark[];
  /** Every digest some repository may serve or some manifest references. */
  live: Set<string>;
  manifests: number;
}

type Refs = { blobs: string[]; children: string[] } | null;

/**
 * The mark phase: every repository's revisions, links and the blobs its manifests reference,
 * following index children (invariant 6). `concurrency` repositories are read at once.
 */
export async function markAll(
  layout: RepositoryLayout,
  repositories: string[],
  concurrency = 8,
  onRepository?: () => void,
  pace: () => Promise<void> = async () => {},
): Promise<Mark> {
  const cache = new Map<string, Promise<Refs>>();
  const marks: RepositoryMark[] = [];
  const queue = [...repositories];
  await Promise.all(
    Array.from({ length: Math.max(1, concurrency) }, async () => {
      for (let repo = queue.shift(); repo !== undefined; repo = queue.shift()) {
        marks.push(await markRepository(layout, repo, cache, pace));
        onRepository?.();
      }
    }),
  );
  const live = new Set<string>();
  let manifests = 0;
  for (const m of marks) {
    manifests += m.revisions.size;
    for (const d of m.revisions) live.add(d);
    for (const d of m.tombstones) live.add(d);
    for (const d of m.referenced) live.add(d);
  }
  return { repositories: marks, live, manifests };
}

async function markRepository(
  layout: RepositoryLayout,
  repository: string,
  cache: Map<string, Promise<Refs>>,
  pace: () => Promise<void>,
): Promise<RepositoryMark> {
  const mark: RepositoryMark = {
    repository,
    referenced: new Set(),
    revisions: new Set(),
    tombstones: new Set(),
    layers: [],
    referrers: [],
    unreadable: [],
    dangling: [],
  };
  for (const { key, modified } of await layout.scanObjects(repository)) {
    if (key.kind === 'revision') mark.revisions.add(key.digest);
    else if (key.kind === 'tombstone') mark.tombstones.add(key.digest);
    else if (key.kind === 'layer') mark.layers.push({ digest: parseDigest(key.digest), modified });
    else if (key.kind === 'referrer')
      mark.referrers.push({
        subject: parseDigest(key.subject),
        digest: parseDigest(key.digest),
        modified,
      });
  }
  const seen = new Set<string>();
  const visit = async (digest: string, depth: number): Promise<void> => {
    if (seen.has(digest) || depth > 8) return;
    seen.add(digest);
    await pace();
    const refs = await refsOf(layout, digest, cache);
    if (!refs) {
      // Whatever it references is unknown, so nothing of this repository is unlinked.
      mark.unreadable.push(digest);
      return;
    }
    for (const b of refs.blobs) mark.referenced.add(b);
    for (const c of refs.children) {
      mark.referenced.add(c);
      await visit(c, depth + 1);
    }
  };
  for (const d of mark.revisions) await visit(d, 0);
  for (const d of mark.tombstones) await visit(d, 0);
  const linked = new Set(mark.layers.map((l) => l.digest.value));
  mark.dangling = [...mark.referenced].filter((d) => !linked.has(d) && !mark.revisions.has(d));
  return mark;
}

/** A manifest's references (null when its content is missing or not a manifest). Cached. */
function refsOf(
  layout: RepositoryLayout,
  digest: string,
  cache: Map<string, Promise<Refs>>,
): Promise<Refs> {
  let p = cache.get(digest);
  if (!p) {
    p = (async () => {
      try {
        const parsed = parseManifest(await layout.readBlob(parseDigest(digest)));
        return {
          blobs: parsed.blobs.map((b) => b.digest),
          children: parsed.children.map((c) => c.digest),
        };
      } catch (err) {
        // Missing or not a manifest: unknown references. Any other error ends the run.
        if (isNotFound(err) || err instanceof OciError) return null;
        throw err;
      }
    })();
    cache.set(digest, p);
  }
  return p;
}
