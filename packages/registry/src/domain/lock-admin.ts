import { OciError, parseDigest } from '@meridian/oci';
import { RepositoryLayout, type LockTarget, type ObjectStore } from '@meridian/storage';
import { effectiveLock, flagsOf, type EffectiveLock } from './lock-rules';
import { validatePatch, type LockPatch, type LockStore, type LockView } from './lock-store';
import { translated } from './storage-errors';

/** At most this many tags are listed with their lock by `describe` of a repository. */
const MAX_TAGS = 1000;

/** A repository's locks as `meridian repository show` prints them. */
export interface RepositoryLockView extends LockView {
  /** Every tag (up to 1 000) with the manifest it points at and its effective lock. */
  tags: { tag: string; digest: string; effective: EffectiveLock }[];
  tagsTruncated: boolean;
  /** Manifests that have a lock record of their own. */
  manifests: { digest: string; attributes: ReturnType<typeof flagsOf>; effective: EffectiveLock }[];
  /** Tags with a lock record that do not exist (any more): the lock stays with the name. */
  lockedTagNames: string[];
}

/**
 * The admin side of locks (`/meridian/v1/admin/locks`): shows a repository's, a tag's or a
 * manifest's lock with the effective result, and changes one on the primary after checking the
 * tag or manifest exists.
 */
export class LockAdmin {
  private readonly layout: RepositoryLayout;

  constructor(
    store: ObjectStore,
    private readonly locks: LockStore,
  ) {
    this.layout = new RepositoryLayout(store);
  }

  describe(repository: string, target: LockTarget): Promise<LockView | RepositoryLockView> {
    return translated(async () => {
      if (target.scope === 'tag') {
        const rec = await this.layout.readTag(repository, target.tag);
        if (!rec && !(await this.layout.readLock(repository, target)))
          throw unknownTag(repository, target.tag);
        return this.locks.show(repository, target, rec?.digest);
      }
      if (target.scope === 'manifest') {
        await this.assertManifest(repository, target.digest);
        return this.locks.show(repository, target);
      }
      return this.describeRepository(repository);
    });
  }

  /** Changes a lock (primary only) and answers the new view. */
  change(repository: string, target: LockTarget, patch: LockPatch): Promise<LockView> {
    return translated(async () => {
      validatePatch(target, patch);
      if (target.scope === 'tag' && !(await this.layout.readTag(repository, target.tag)))
        throw unknownTag(repository, target.tag);
      if (target.scope === 'manifest') await this.assertManifest(repository, target.digest);
      await this.locks.update(repository, target, patch);
      const view = await this.describe(repository, target);
      return view;
    });
  }

  private async describeRepository(repository: string): Promise<RepositoryLockView> {
    if (!(await this.layout.repositoryExists(repository)))
      throw new OciError('NAME_UNKNOWN', `repository name not known to registry: ${repository}`, {
        name: repository,
      });
    const locks = await this.locks.fresh(repository);
    const base = await this.locks.show(repository, { scope: 'repository' });
    const all = await this.layout.listTags(repository);
    const tags: RepositoryLockView['tags'] = [];
    const names = all.slice(0, MAX_TAGS);
    // 32 reads at a time: a thousand tags on S3 is a few round trips, not a thousand.
    for (let i = 0; i < names.length; i += 32) {
      const batch = names.slice(i, i + 32);
      const recs = await Promise.all(batch.map((t) => this.layout.readTag(repository, t)));
      batch.forEach((tag, j) => {
        const rec = recs[j];
        if (rec)
          tags.push({
            tag,
            digest: rec.digest,
            effective: effectiveLock(locks, { tag, digest: rec.digest, tagExists: true }),
          });
      });
    }
    const manifests = [...locks.manifests].map(([digest, rec]) => ({
      digest,
      attributes: flagsOf(rec),
      effective: effectiveLock(locks, { digest }),
    }));
    const present = new Set(all);
    return {
      ...base,
      tags,
      tagsTruncated: all.length > MAX_TAGS,
      manifests,
      lockedTagNames: [...locks.tags.keys()].filter((t) => !present.has(t)).sort(),
    };
  }

  private async assertManifest(repository: string, digest: string): Promise<void> {
    if (!(await this.layout.hasRevision(repository, parseDigest(digest))))
      throw new OciError('MANIFEST_UNKNOWN', `manifest unknown to registry: ${digest}`);
  }
}

function unknownTag(repository: string, tag: string): OciError {
  return new OciError('MANIFEST_UNKNOWN', `tag unknown to registry: ${repository}:${tag}`);
}
