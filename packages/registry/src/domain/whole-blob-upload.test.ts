import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf, OciError } from '@meridian/oci';
import { openStore } from '@meridian/storage';
import { Registry } from './registry';

describe('a monolithic upload of bytes already verified in this process', () => {
  let dir: string;
  let registry: Registry;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-whole-'));
    registry = new Registry({ store: await openStore(dir) });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const stored = async (repo: string, digest: string): Promise<Buffer | undefined> => {
    try {
      const r = await registry.blobs.read(repo, digest);
      const chunks: Buffer[] = [];
      for await (const c of r.body) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    } catch (err) {
      if (err instanceof OciError && err.code === 'BLOB_UNKNOWN') return undefined;
      throw err;
    }
  };

  for (const size of [100, 3 * 1024 * 1024]) {
    it(`stores and links a ${size}-byte blob`, async () => {
      const bytes = Buffer.alloc(size, 7);
      const digest = digestOf(bytes);
      const info = await registry.uploads.monolithic(
        'cached/app',
        digest,
        Readable.from([bytes.subarray(0, 10), bytes.subarray(10)]),
        size,
        { verified: true },
      );
      expect(info).toEqual({ digest, size });
      expect((await stored('cached/app', digest))?.equals(bytes)).toBe(true);
    });

    it(`still refuses a ${size}-byte body cut short, and stores nothing`, async () => {
      const bytes = Buffer.alloc(size, 9);
      const digest = digestOf(bytes);
      const short = Readable.from([bytes.subarray(0, size - 1)]);
      await expect(
        registry.uploads.monolithic('cached/app', digest, short, size, { verified: true }),
      ).rejects.toBeInstanceOf(OciError);
      expect(await stored('cached/app', digest)).toBeUndefined();
    });
  }

  it('hashes a body that is not marked verified: wrong bytes are refused', async () => {
    const digest = digestOf(Buffer.from('the real bytes'));
    await expect(
      registry.uploads.monolithic(
        'cached/app',
        digest,
        Readable.from([Buffer.from('other bytes!!!')]),
        14,
      ),
    ).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(await stored('cached/app', digest)).toBeUndefined();
  });
});
