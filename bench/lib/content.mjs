// Benchmark content: incompressible bytes generated on the fly, and OCI images built from them.
// Large blobs are never held in memory: a blob is a seed and a size, and its bytes are an
// AES-CTR keystream that can be regenerated as often as needed (several GB/s, so the client's
// cost stays small next to the server's).
import { createCipheriv, createHash, randomBytes } from 'node:crypto';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

/** The Accept header a modern client (containerd, skopeo) sends for a manifest. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

const CHUNK = MiB;
const ZEROS = Buffer.alloc(CHUNK);

/** Yields `size` pseudo-random bytes derived from `seed`, in 1 MiB chunks. */
export function* keystream(seed, size) {
  const key = createHash('sha256').update(String(seed)).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  for (let left = size; left > 0; left -= CHUNK) {
    const n = Math.min(CHUNK, left);
    yield cipher.update(n === CHUNK ? ZEROS : ZEROS.subarray(0, n));
  }
}

export function sha256(buf) {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}

/** A blob held in memory (small blobs: configs, small layers, manifests). */
export function memBlob(bytes, mediaType = MEDIA.layer) {
  return { mediaType, size: bytes.length, digest: sha256(bytes), bytes };
}

/** A blob known by seed and size; `digest` is computed by one streaming pass. */
export function streamBlob(seed, size, mediaType = MEDIA.layer) {
  const h = createHash('sha256');
  for (const chunk of keystream(seed, size)) h.update(chunk);
  return {
    mediaType,
    size,
    digest: `sha256:${h.digest('hex')}`,
    seed,
    chunks: () => keystream(seed, size),
  };
}

export function descriptor(blob) {
  return { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
}

/** An OCI image: a config naming the layers, and a manifest; `tag` is where it is pushed. */
export function makeImage(layers, { annotation } = {}) {
  const config = memBlob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: new Date(0).toISOString(),
        config: { Labels: { 'bench.nonce': randomBytes(8).toString('hex') } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }),
    ),
    MEDIA.config,
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: descriptor(config),
    layers: layers.map(descriptor),
    ...(annotation ? { annotations: { 'bench.annotation': annotation } } : {}),
  };
  const body = Buffer.from(JSON.stringify(manifest));
  return {
    config,
    layers,
    manifest: { bytes: body, digest: sha256(body), mediaType: MEDIA.manifest },
  };
}

/** 1 config + `n` small random layers of `size` bytes each. */
export function smallImage(n = 2, size = 4096) {
  return makeImage(Array.from({ length: n }, () => memBlob(randomBytes(size))));
}
