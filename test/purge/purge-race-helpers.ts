import { parseFilter, purge, type PurgeTarget } from '@meridian/lifecycle';
import { parseDigest } from '@meridian/oci';
import type { Registry } from '@meridian/registry';
import type { RepositoryLayout } from '@meridian/storage';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  imageManifest,
  pushBlob,
  pushImage,
  randomBlob,
  sha256,
} from '../gc/gc-helpers';

/**
 * One round of a purge racing two pushes in repository `repo`: the purge (through `target`)
 * plans to delete tag `old` and every untagged manifest; `pusher` moves `old` to a new manifest
 * and pushes an index naming one of those untagged manifests, each starting anywhere within the
 * time a purge takes. Asserts that a push that succeeded is never undone. Returns which races
 * really happened (the tag planned at its old manifest; the index push succeeding).
 */
export async function purgeRaceRound(opts: {
  repo: string;
  pusher: Registry;
  target: PurgeTarget;
  layout: RepositoryLayout;
}): Promise<{ moved: boolean; indexed: boolean }> {
  const { repo, pusher: reg, target, layout } = opts;
  await pushImage(reg, repo, 'keep', randomBlob(), [randomBlob()]);
  // A tag the purge plans to delete, moved by a push at the same time.
  await pushImage(reg, repo, 'old', randomBlob(), [randomBlob()]);
  const [cfg, layer] = [randomBlob(), randomBlob()];
  await Promise.all([cfg, layer].map((b) => pushBlob(reg, repo, b)));
  const moved = imageManifest(cfg, [layer]);
  // An untagged manifest the purge plans to delete, named by an index pushed at the same time.
  const [ccfg, clayer] = [randomBlob(), randomBlob()];
  await Promise.all([ccfg, clayer].map((b) => pushBlob(reg, repo, b)));
  const child = imageManifest(ccfg, [clayer]);
  await reg.manifests.put(repo, sha256(child), child, OCI_MANIFEST);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(child), size: child.length }],
    }),
  );
  const criteria = { filters: [parseFilter(`${repo}:old`)], untagged: true, force: true };
  // The pushes start anywhere within the time a purge of this repository takes.
  const t0 = Date.now();
  await purge(layout, target, { ...criteria, dryRun: true });
  const span = (Date.now() - t0) * 1.5;
  const delay = () => new Promise((r) => setTimeout(r, Math.random() * span));
  const [res, pushTag, pushIndex] = await Promise.allSettled([
    purge(layout, target, { ...criteria, dryRun: false }),
    delay().then(() => reg.manifests.put(repo, 'old', moved, OCI_MANIFEST)),
    delay().then(() => reg.manifests.put(repo, 'idx', index, OCI_INDEX)),
  ]);
  // The push that moved the tag succeeded. When the purge planned the tag at its old
  // manifest, the push wins: the tag is there and points at what it pushed. (A push that
  // landed before the plan moved the tag the filter names; the purge then takes it whole.)
  expect(pushTag.status).toBe('fulfilled');
  expect(res.status).toBe('fulfilled');
  const planned = res.status === 'fulfilled' ? res.value.repositories[0]?.tags : undefined;
  const raced = !!planned?.some((t) => t.tag === 'old' && t.digest !== sha256(moved));
  if (raced) {
    expect((await layout.readTag(repo, 'old'))?.digest).toBe(sha256(moved));
    expect((await layout.readBlob(digestOf(moved))).equals(moved)).toBe(true);
    expect(await layout.hasRevision(repo, digestOf(moved))).toBe(true);
  }
  // An index push that succeeded still has its child; one that failed named a child
  // already gone (the client pushes it again), and left no tag behind.
  if (pushIndex.status === 'fulfilled') {
    expect(await layout.hasRevision(repo, digestOf(child))).toBe(true);
    expect((await layout.readBlob(digestOf(child))).equals(child)).toBe(true);
  } else {
    expect(await layout.readTag(repo, 'idx')).toBeUndefined();
  }
  return { moved: raced, indexed: pushIndex.status === 'fulfilled' };
}

const digestOf = (bytes: Buffer) => parseDigest(sha256(bytes));
