import { pipeline, Transform, type Readable } from 'node:stream';
import { OciError, parseDigest, type Descriptor } from '@meridian/oci';
import type { Registry } from '@meridian/registry';
import { planImage, type ImagePlan } from './image-plan';
import { RemoteRegistry, type UpstreamCredentials } from './remote-registry';
import type { UpstreamGuard } from './upstream-guard';
import { formatRef, parseSourceRef, parseTarget, type SourceRef } from './source-ref';
import { UpstreamError } from './upstream-error';

/** What to import (the admin API's body, after the credential set was resolved). */
export interface ImportSpec {
  /** `REGISTRY/REPO[:TAG|@DIGEST]`. */
  source: string;
  /** `REPO[:TAG]` targets; default: the source's repository and tag. */
  images?: string[];
  /** Shorthand for one target: this repository, the source's tag. */
  repository?: string;
  credentials?: UpstreamCredentials;
  /** How errors name the credentials (`credential set "hub"`). */
  credentialName?: string;
  /** Move a tag that points at other content. Default false: such an import is refused. */
  force?: boolean;
  /** Read the source and report what would be copied; write nothing. */
  dryRun?: boolean;
  /** Copy what refers to the image (signatures, SBOMs) too. Default true. */
  referrers?: boolean;
}

export interface ImportProgress {
  manifests: number;
  blobs: number;
  /** Blobs copied from the source so far. */
  blobsCopied: number;
  /** Blobs the registry already held (not fetched). */
  blobsSkipped: number;
  bytesTotal: number;
  bytesCopied: number;
  bytesSkipped: number;
}

/** Progress before anything was copied. */
export function emptyProgress(): ImportProgress {
  return {
    manifests: 0,
    blobs: 0,
    blobsCopied: 0,
    blobsSkipped: 0,
    bytesTotal: 0,
    bytesCopied: 0,
    bytesSkipped: 0,
  };
}

export interface ImportResult {
  source: string;
  digest: string;
  mediaType: string;
  targets: string[];
  manifests: number;
  referrers: number;
  blobs: number;
  blobsCopied: number;
  blobsSkipped: number;
  bytesCopied: number;
  bytesSkipped: number;
  dryRun: boolean;
}

/** How a caller (a cache fill) joins one run: see `Importer.run`. */
export interface ImportHooks {
  /**
   * Called once the image itself is read — its manifests and blobs —, before its referrers are
   * looked up and before the tags are checked.
   */
  sketched?: (plan: ImagePlan) => void;
  /** Called once the image is read and the tags checked, before anything is copied. */
  planned?(plan: ImagePlan): void;
  /**
   * Where a blob's bytes come from. Default `remote.blob(from, b.digest)`. `verified`: the body
   * ends only once its bytes hashed to the digest (a `BlobFill`'s reader), so the store does not
   * hash them again.
   */
  openBlob?(
    from: string,
    b: Descriptor,
  ): Promise<{ body: Readable; size: number; verified?: boolean } | undefined>;
}

/** A resolved import: where from, where to. Throws `NAME_INVALID` for bad names. */
export interface ResolvedImport {
  source: SourceRef;
  targets: { repository: string; tag?: string }[];
}

export function resolveImport(spec: ImportSpec): ResolvedImport {
  const source = parseSourceRef(spec.source);
  const sourceTag = source.reference.includes(':') ? undefined : source.reference;
  const images = spec.images?.length ? spec.images : [spec.repository ?? source.repository];
  return { source, targets: images.map((i) => parseTarget(i, sourceTag)) };
}

const BLOB_CONCURRENCY = 4;

/**
 * Copies an image from another registry into this one, through the registry's own stores (so
 * it is journaled, replicated, locked and collected like a push): every blob streamed and
 * digest-verified by the upload path, blobs already stored linked instead of fetched, then the
 * manifests in the order they can be served, then the tags. A tag that points at other content
 * is refused before anything is written, unless `force`.
 */
export class Importer {
  constructor(
    private readonly registry: Registry,
    private readonly opts: { timeoutMs?: number; guard?: UpstreamGuard } = {},
  ) {}

  /**
   * Runs one import; `remote` (a cache rule's, with its tokens) replaces one made from `spec`,
   * and `hooks` let a cache fill see the plan first and share the blobs' bytes.
   */
  async run(
    spec: ImportSpec,
    progress: ImportProgress,
    remote?: RemoteRegistry,
    hooks: ImportHooks = {},
  ): Promise<ImportResult> {
    const { source, targets } = resolveImport(spec);
    remote ??= new RemoteRegistry({
      baseUrl: source.baseUrl,
      credentials: spec.credentials,
      credentialName: spec.credentialName,
      timeoutMs: this.opts.timeoutMs,
      guard: this.opts.guard,
    });
    const plan = await planImage(remote, source.repository, source.reference, {
      referrers: spec.referrers,
      sketched: hooks.sketched,
    });
    progress.manifests = plan.manifests.length;
    progress.blobs = plan.blobs.length * targets.length;
    progress.bytesTotal = plan.blobs.reduce((n, b) => n + b.size, 0) * targets.length;
    await this.checkTags(targets, plan.root.digest, spec.force === true);
    hooks.planned?.(plan);
    for (const t of targets) {
      if (spec.dryRun) await this.countPresent(t.repository, plan.blobs, progress);
      else await this.copy(remote, source, t, plan, progress, hooks);
    }
    const label = (t: { repository: string; tag?: string }) =>
      formatRef(t.repository, t.tag ?? plan.root.digest);
    return {
      source: `${source.registry}/${formatRef(source.repository, source.reference)}`,
      digest: plan.root.digest,
      mediaType: plan.root.mediaType,
      targets: targets.map(label),
      manifests: plan.manifests.length,
      referrers: plan.referrers,
      blobs: plan.blobs.length,
      blobsCopied: progress.blobsCopied,
      blobsSkipped: progress.blobsSkipped,
      bytesCopied: progress.bytesCopied,
      bytesSkipped: progress.bytesSkipped,
      dryRun: spec.dryRun === true,
    };
  }

  private async checkTags(
    targets: { repository: string; tag?: string }[],
    digest: string,
    force: boolean,
  ): Promise<void> {
    if (force) return;
    for (const t of targets) {
      if (!t.tag) continue;
      const current = await this.registry.tags.get(t.repository, t.tag);
      if (current && current.digest !== digest)
        throw new OciError(
          'DENIED',
          `${t.repository}:${t.tag} already points at ${current.digest}, not the source's ${digest}; import with --force to move it`,
          { current: current.digest, source: digest },
          409,
        );
    }
  }

  private async countPresent(
    repository: string,
    blobs: Descriptor[],
    progress: ImportProgress,
  ): Promise<void> {
    for (const b of blobs) {
      const present = await this.registry.blobs.stat(repository, b.digest).then(
        () => true,
        () => false,
      );
      if (present) {
        progress.blobsSkipped++;
        progress.bytesSkipped += b.size;
      }
    }
  }

  private async copy(
    remote: RemoteRegistry,
    source: SourceRef,
    target: { repository: string; tag?: string },
    plan: ImagePlan,
    progress: ImportProgress,
    hooks: ImportHooks,
  ): Promise<void> {
    const queue = [...plan.blobs];
    const worker = async () => {
      for (let b = queue.shift(); b; b = queue.shift())
        await this.copyBlob(remote, source.repository, target.repository, b, progress, hooks);
    };
    await Promise.all(Array.from({ length: BLOB_CONCURRENCY }, worker));
    for (const m of plan.manifests)
      await this.registry.manifests.put(target.repository, m.digest, m.bytes, m.mediaType);
    if (target.tag)
      await this.registry.manifests.put(
        target.repository,
        target.tag,
        plan.root.bytes,
        plan.root.mediaType,
      );
  }

  private async copyBlob(
    remote: RemoteRegistry,
    from: string,
    repository: string,
    b: Descriptor,
    progress: ImportProgress,
    hooks: ImportHooks,
  ): Promise<void> {
    const skipped = () => {
      progress.blobsSkipped++;
      progress.bytesSkipped += b.size;
    };
    const present = await this.registry.blobs.stat(repository, b.digest).then(
      () => true,
      () => false,
    );
    if (present) return skipped();
    // Stored for another repository: linked, not fetched again.
    if (await this.registry.blobs.mount(repository, parseDigest(b.digest), undefined))
      return skipped();
    const up: { body: Readable; size: number; verified?: boolean } | undefined =
      await (hooks.openBlob?.(from, b) ?? remote.blob(from, b.digest));
    if (!up) throw new UpstreamError('not-found', `${remote.host} has no blob ${b.digest}`);
    if (up.size !== b.size) {
      up.body.destroy();
      throw new UpstreamError(
        'invalid',
        `${remote.host} sent blob ${b.digest} with ${up.size} bytes; the manifest says ${b.size}`,
      );
    }
    await this.registry.uploads.monolithic(
      repository,
      b.digest,
      counted(up.body, progress),
      b.size,
      { verified: up.verified === true },
    );
    progress.blobsCopied++;
  }
}

/** `body`, counting its bytes into `progress.bytesCopied` as they pass. */
function counted(body: Readable, progress: ImportProgress): Readable {
  const out = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      progress.bytesCopied += chunk.length;
      done(null, chunk);
    },
  });
  // Either side failing destroys both: the upstream connection is never left open.
  pipeline(body, out, () => {});
  return out;
}
