import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { GarbageCollector, type GcGuard } from '@meridian/lifecycle';
import type { Registry } from '@meridian/registry';
import type { ObjectStore } from '@meridian/storage';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
}

export function blobOf(bytes: Buffer): Blob {
  return { digest: sha256(bytes), size: bytes.length, bytes };
}

export function randomBlob(size = 64): Blob {
  return blobOf(randomBytes(size));
}

/** Uploads a blob the way a client does after `HEAD` said 404. */
export async function upload(reg: Registry, repo: string, b: Blob): Promise<void> {
  await reg.uploads.monolithic(repo, b.digest, Readable.from([b.bytes]), b.size);
}

/** A client's push of one blob: `HEAD`, and an upload only when the registry lacks it. */
export async function pushBlob(
  reg: Registry,
  repo: string,
  b: Blob,
): Promise<'skipped' | 'uploaded'> {
  try {
    await reg.blobs.stat(repo, b.digest);
    return 'skipped';
  } catch {
    await upload(reg, repo, b);
    return 'uploaded';
  }
}

export function imageManifest(config: Blob, layers: Blob[], extra: object = {}): Buffer {
  const d = (b: Blob, mediaType: string) => ({ mediaType, digest: b.digest, size: b.size });
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: d(config, 'application/vnd.oci.image.config.v1+json'),
      layers: layers.map((l) => d(l, 'application/vnd.oci.image.layer.v1.tar')),
      ...extra,
    }),
  );
}

/** Pushes config, layers (HEAD first) and the manifest under `tag`; returns the manifest digest. */
export async function pushImage(
  reg: Registry,
  repo: string,
  tag: string,
  config: Blob,
  layers: Blob[],
): Promise<string> {
  await Promise.all([config, ...layers].map((b) => pushBlob(reg, repo, b)));
  const bytes = imageManifest(config, layers);
  await reg.manifests.put(repo, tag, bytes, OCI_MANIFEST);
  return sha256(bytes);
}

/** Reads every blob of `repo:reference` back and checks each digest: what a pull does. */
export async function pullImage(reg: Registry, repo: string, reference: string): Promise<void> {
  const m = await reg.manifests.get(repo, reference);
  const body = JSON.parse(m.bytes.toString()) as {
    config?: { digest: string };
    layers?: { digest: string }[];
    manifests?: { digest: string }[];
  };
  for (const child of body.manifests ?? []) await pullImage(reg, repo, child.digest);
  for (const b of [body.config, ...(body.layers ?? [])]) {
    if (!b) continue;
    const r = await reg.blobs.open(repo, b.digest);
    const chunks: Buffer[] = [];
    for await (const c of r.body) chunks.push(c as Buffer);
    const got = sha256(Buffer.concat(chunks));
    if (got !== b.digest)
      throw new Error(`blob ${b.digest} of ${repo}:${reference} reads as ${got}`);
  }
}

/** Sets every file under `root` to `ageMs` old (ages links and blobs past a grace period). */
export async function ageAll(root: string, ageMs: number): Promise<void> {
  const t = new Date(Date.now() - ageMs);
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [];
        throw err;
      },
    );
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      // A file may go between the listing and here (a write's temporary file renamed into place).
      else
        await utimes(p, t, t).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
    }
  };
  await walk(root);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The GC race both race suites run (test/gc/gc-race*.test.ts): each round pushes an image through
 * `writer`, deletes it, ages the store past the grace, then runs `collector` while `writer`
 * pushes a new image that reuses the deleted image's layer (a mount into another repository every
 * third round, a HEAD-skip push in the same repository otherwise). After each round the image
 * just pushed, and the previous one, must pull back byte for byte through every `readers`
 * registry; the previous one is then deleted so the next run has work. Every unlink and delete is
 * delayed a few random milliseconds (`seed`) to widen the windows. Returns the runs' totals.
 */
export async function raceRounds(opts: {
  dir: string;
  store: ObjectStore;
  writer: Registry;
  readers: Registry[];
  guard: GcGuard;
  iterations: number;
  graceMs: number;
  seed: number;
}): Promise<{ conflicts: number; freed: number; last: { repo: string; tag: string } }> {
  const { dir, writer, readers, iterations, graceMs } = opts;
  let seed = opts.seed;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const gc = new GarbageCollector({
    region: 'eastus',
    store: opts.store,
    role: 'primary',
    guard: opts.guard,
    hooks: {
      beforeUnlink: () => sleep(rand(4)),
      beforeDelete: () => sleep(rand(4)),
    },
  });
  let conflicts = 0;
  let freed = 0;
  const pushed: { repo: string; tag: string }[] = [];
  for (let i = 0; i < iterations; i++) {
    const repo = `race/r${i % 5}`;
    const [shared, unique, c1, c2, fresh] = [
      randomBlob(256),
      randomBlob(128),
      randomBlob(),
      randomBlob(),
      randomBlob(),
    ];
    const old = await pushImage(writer, repo, `old-${i}`, c1, [shared, unique]);
    await writer.manifests.delete(repo, old);
    await ageAll(dir, 3_600_000);
    const [run] = await Promise.all([
      gc.run({ graceMs }),
      (async () => {
        await sleep(rand(6));
        if (i % 3 === 0) {
          // A push to another repository that mounts the old layer from this one.
          const target = `race/m${i % 4}`;
          await writer.uploads
            .mountOrCreate(target, shared.digest, repo)
            .then((r) => ('mounted' in r ? undefined : pushBlob(writer, target, shared)));
          await pushImage(writer, target, `new-${i}`, c2, [shared, fresh]);
          pushed.push({ repo: target, tag: `new-${i}` });
        } else {
          // HEAD the old layer (it is there: skip it), then push the rest and the manifest.
          await pushImage(writer, repo, `new-${i}`, c2, [shared, fresh]);
          pushed.push({ repo, tag: `new-${i}` });
        }
      })(),
    ]);
    conflicts += run.conflicts;
    freed += run.blobsDeleted;
    // The image pushed during the run pulls back byte for byte, through every node...
    const latest = pushed.at(-1)!;
    for (const r of readers) await pullImage(r, latest.repo, latest.tag);
    // ...and the previous one, which the run could have collected from under, still does.
    const prev = pushed.at(-2);
    if (prev) {
      for (const r of readers) await pullImage(r, prev.repo, prev.tag);
      // Then it is deleted too, so the store stays small and the next run has work to do.
      await writer.manifests.delete(
        prev.repo,
        (await writer.manifests.get(prev.repo, prev.tag)).digest,
      );
    }
  }
  const last = pushed.at(-1)!;
  for (const r of readers) await pullImage(r, last.repo, last.tag);
  // Past every grace (and the fence's recent-reference window), GC frees what nothing uses.
  await ageAll(dir, 3_600_000);
  const final = await gc.run({ graceMs });
  freed += final.blobsDeleted;
  for (const r of readers) await pullImage(r, last.repo, last.tag);
  return { conflicts, freed, last };
}
