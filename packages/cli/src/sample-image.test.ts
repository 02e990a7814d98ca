import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSampleImage } from './sample-image';

describe('writeSampleImage', () => {
  it('writes a content-addressed OCI layout whose layer is a valid gzip tar', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meridian-sample-'));
    const digest = writeSampleImage(dir, 'v2');
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    expect(index.manifests[0]!.digest).toBe(digest);
    expect(index.manifests[0]!.annotations['org.opencontainers.image.ref.name']).toBe('v2');
    const blobs = join(dir, 'blobs', 'sha256');
    for (const f of readdirSync(blobs)) {
      expect(
        createHash('sha256')
          .update(readFileSync(join(blobs, f)))
          .digest('hex'),
      ).toBe(f);
    }
    const manifest = JSON.parse(readFileSync(join(blobs, digest.slice(7)), 'utf8')) as {
      layers: { digest: string }[];
    };
    const listing = execFileSync('tar', ['tzf', join(blobs, manifest.layers[0]!.digest.slice(7))], {
      encoding: 'utf8',
    });
    expect(listing.split('\n').filter(Boolean)).toEqual(['hello.txt', 'random.bin']);
  });
});
