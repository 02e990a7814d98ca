import {
  acceptsMediaType,
  digestOf,
  isValidName,
  isValidTag,
  MediaTypes,
  OciError,
  parseDigest,
  parseManifest,
  parsePushedManifest,
} from './index';

const d = (s: string) => digestOf(s);
const manifest = (o: object) => Buffer.from(JSON.stringify(o));
/** The OciError `fn` throws, as `code status`, or what else happened. */
const failure = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return err instanceof OciError ? `${err.code} ${err.status}` : 'not an OciError';
  }
  return 'no error';
};

describe('digests', () => {
  it('accepts sha256 and sha512 and refuses malformed ones', () => {
    expect(parseDigest(d('x')).algorithm).toBe('sha256');
    expect(parseDigest(digestOf('x', 'sha512')).hex).toHaveLength(128);
    for (const bad of [
      'sha256:abc',
      'md5:' + 'a'.repeat(32),
      'sha256:' + 'A'.repeat(64),
      'nope',
      '',
    ]) {
      expect(() => parseDigest(bad)).toThrow(OciError);
    }
  });
});

describe('names and tags', () => {
  it('follows the spec grammar', () => {
    for (const ok of ['a', 'team/app/web', 'a.b_c__d-e--f', 'x/y0'])
      expect(isValidName(ok)).toBe(true);
    for (const bad of ['A', '../etc', 'a//b', '/a', 'a/', '_a', 'a..b', 'a'.repeat(256)])
      expect(isValidName(bad)).toBe(false);
    expect(isValidTag('v1.0_rc-1')).toBe(true);
    expect(isValidTag('.hidden')).toBe(false);
    expect(isValidTag('a'.repeat(129))).toBe(false);
  });
});

describe('parseManifest', () => {
  const config = { mediaType: MediaTypes.ociConfig, digest: d('c'), size: 1 };
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d('l'), size: 1 };
  it('reads blobs, subject and artifact type of an image manifest', () => {
    const p = parseManifest(
      manifest({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config,
        layers: [layer],
        subject: layer,
      }),
      MediaTypes.ociManifest,
    );
    expect(p.blobs.map((b) => b.digest)).toEqual([d('c'), d('l')]);
    expect(p.subject?.digest).toBe(d('l'));
    expect(p.artifactType).toBe(MediaTypes.ociConfig);
  });
  it('reads children of an index', () => {
    const p = parseManifest(
      manifest({ schemaVersion: 2, manifests: [{ ...layer, mediaType: MediaTypes.ociManifest }] }),
      MediaTypes.ociIndex,
    );
    expect(p.children).toHaveLength(1);
  });
  it('refuses schema 1, bad JSON, bad descriptors and mismatched media types', () => {
    const cases: [Buffer, string][] = [
      [manifest({ schemaVersion: 1, name: 'x' }), MediaTypes.dockerSchema1Signed],
      [Buffer.from('{nope'), MediaTypes.ociManifest],
      [
        manifest({ schemaVersion: 2, config: { ...config, digest: 'sha256:zz' }, layers: [] }),
        MediaTypes.ociManifest,
      ],
      [
        manifest({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config, layers: [] }),
        MediaTypes.ociManifest,
      ],
      [manifest({ schemaVersion: 2, config, layers: [] }), 'application/x-unknown'],
    ];
    for (const [body, ct] of cases) {
      expect(failure(() => parseManifest(body, ct))).toBe('MANIFEST_INVALID 400');
    }
  });
  it('refuses a Content-Type it does not store even when the body names a known type', () => {
    const body = manifest({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config,
      layers: [],
    });
    expect(failure(() => parseManifest(body, 'application/vnd.example.thing+json'))).toBe(
      'MANIFEST_INVALID 400',
    );
    for (const ct of [
      'application/json',
      'application/octet-stream',
      undefined,
      `${MediaTypes.ociManifest}; charset=utf-8`,
    ]) {
      expect(parseManifest(body, ct).mediaType).toBe(MediaTypes.ociManifest);
    }
  });
  it('refuses typed optional fields of the wrong type instead of storing them as sent', () => {
    const image = { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [layer] };
    const child = { ...layer, mediaType: MediaTypes.ociManifest };
    const index = (c: object) => ({ schemaVersion: 2, manifests: [{ ...child, ...c }] });
    const bad: [object, string][] = [
      [{ ...image, annotations: { a: { nested: [1] } } }, MediaTypes.ociManifest],
      [{ ...image, annotations: ['x'] }, MediaTypes.ociManifest],
      [{ ...image, annotations: { n: 7 } }, MediaTypes.ociManifest],
      [{ ...image, artifactType: 42 }, MediaTypes.ociManifest],
      [{ ...image, artifactType: 'not a media type' }, MediaTypes.ociManifest],
      [{ ...image, mediaType: 7 }, 'application/json'],
      [{ ...image, layers: [{ ...layer, annotations: { a: 1 } }] }, MediaTypes.ociManifest],
      [{ ...image, layers: [{ ...layer, urls: 'http://x' }] }, MediaTypes.ociManifest],
      [{ ...image, layers: [{ ...layer, urls: [1] }] }, MediaTypes.ociManifest],
      [{ ...image, subject: { ...layer, artifactType: {} } }, MediaTypes.ociManifest],
      [index({ platform: 'linux/amd64' }), MediaTypes.ociIndex],
      [index({ platform: { os: 'linux' } }), MediaTypes.ociIndex],
      [index({ platform: { os: 'linux', architecture: 1 } }), MediaTypes.ociIndex],
      [index({ platform: { os: 'linux', architecture: 'arm', variant: 7 } }), MediaTypes.ociIndex],
      [index({ platform: { os: 'l', architecture: 'a', features: 'x' } }), MediaTypes.ociIndex],
      [{ ...index({}), annotations: { a: null } }, MediaTypes.ociIndex],
    ];
    for (const [body, ct] of bad) {
      expect([
        JSON.stringify(body),
        failure(() => parsePushedManifest(manifest(body), ct)),
      ]).toEqual([JSON.stringify(body), 'MANIFEST_INVALID 400']);
      // What an earlier version stored stays readable (replication, GC and purge re-read it).
      expect(failure(() => parseManifest(manifest(body), ct))).toBe('no error');
    }
    const good = parsePushedManifest(
      manifest({
        ...index({
          platform: { os: 'linux', architecture: 'arm64', variant: 'v8', 'os.features': ['x'] },
          annotations: { 'org.example': 'v' },
        }),
        artifactType: 'application/vnd.example.sbom+json',
        annotations: null,
      }),
      MediaTypes.ociIndex,
    );
    expect(good.artifactType).toBe('application/vnd.example.sbom+json');
    expect(good.annotations).toBeUndefined();
    expect(good.children[0]?.annotations).toEqual({ 'org.example': 'v' });
  });
  it('refuses manifests over 4 MiB', () => {
    expect(
      failure(() => parseManifest(Buffer.alloc(4 * 1024 * 1024 + 1), MediaTypes.ociManifest)),
    ).toBe('SIZE_INVALID 413');
  });
});

describe('acceptsMediaType', () => {
  it('serves anything without Accept and refuses an explicit list that excludes the type', () => {
    expect(acceptsMediaType(undefined, MediaTypes.ociIndex)).toBe(true);
    expect(acceptsMediaType('*/*', MediaTypes.ociIndex)).toBe(true);
    expect(
      acceptsMediaType(`${MediaTypes.dockerManifest}, ${MediaTypes.ociIndex}`, MediaTypes.ociIndex),
    ).toBe(true);
    expect(acceptsMediaType(MediaTypes.dockerManifest, MediaTypes.ociIndex)).toBe(false);
  });
});
