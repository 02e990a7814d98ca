import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import type { Registry } from '@meridian/registry';

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
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else await utimes(p, t, t);
    }
  };
  await walk(root);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
