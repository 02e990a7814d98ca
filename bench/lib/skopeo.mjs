// skopeo as the "real client": images written as OCI layout directories, then `skopeo copy`.
// Layers are real gzip streams (stored blocks, level 0, of random bytes) so skopeo keeps them as
// they are instead of compressing them on the way (a registry destination wants compressed
// layers), which would measure gzip rather than the registry.
import { execFile } from 'node:child_process';
import { createWriteStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip, gzipSync } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { keystream, makeImage, memBlob, MEDIA } from './content.mjs';

const run = promisify(execFile);

/** An OCI image layout directory to which images are added by tag. */
export class OciLayout {
  constructor(dir) {
    this.dir = dir;
    this.blobDir = join(dir, 'blobs', 'sha256');
    mkdirSync(this.blobDir, { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    this.index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [],
    };
  }

  writeMem(blob) {
    writeFileSync(join(this.blobDir, blob.digest.slice('sha256:'.length)), blob.bytes);
  }

  /** Writes a gzip (level 0) layer of `size` random bytes from `seed`, streamed to disk. */
  async writeGzipLayer(seed, size) {
    const tmp = join(this.blobDir, `tmp-${seed}`);
    const h = createHash('sha256');
    let bytes = 0;
    const tap = new Transform({
      transform(chunk, _enc, cb) {
        h.update(chunk);
        bytes += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(
      Readable.from(keystream(seed, size)),
      createGzip({ level: 0 }),
      tap,
      createWriteStream(tmp),
    );
    const digest = `sha256:${h.digest('hex')}`;
    renameSync(tmp, join(this.blobDir, digest.slice('sha256:'.length)));
    return { mediaType: MEDIA.layer, digest, size: bytes };
  }

  addImage(tag, layers) {
    const image = makeImage(layers);
    this.writeMem(image.config);
    this.writeMem(image.manifest);
    this.index.manifests.push({
      mediaType: MEDIA.manifest,
      digest: image.manifest.digest,
      size: image.manifest.bytes.length,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    });
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify(this.index));
    return image;
  }

  /** An image of `n` small gzip layers (`size` random bytes each). */
  addSmallImage(tag, n = 2, size = 4096) {
    const layers = Array.from({ length: n }, () =>
      memBlob(gzipSync(randomBytes(size), { level: 0 })),
    );
    layers.forEach((l) => this.writeMem(l));
    return this.addImage(tag, layers);
  }
}

/** `skopeo copy oci:DIR:TAG docker://HOST/REPO:TAG` over plain HTTP. */
export async function skopeoCopy(layoutDir, tag, host, repo) {
  await run(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `oci:${layoutDir}:${tag}`,
      `docker://${host}/${repo}:${tag}`,
    ],
    { maxBuffer: 1 << 20 },
  );
}
