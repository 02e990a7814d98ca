/** What `/acr/v1` shows of a manifest's content (ADR 0020), read from its bytes and config. */
export interface ManifestSummary {
  mediaType: string;
  /** Bytes of the manifest, its config and its layers (an index: itself and its manifests). */
  imageSize: number;
  configMediaType?: string;
  architecture?: string;
  os?: string;
  /** An index's manifests with their platforms (ACR's `references`). */
  references?: { digest: string; architecture?: string; os?: string }[];
  artifactType?: string;
  /** The manifest this one refers to (a signature's or SBOM's image). */
  subject?: string;
}

/** Configs larger than this are not read for their platform. */
const MAX_CONFIG_BYTES = 1024 * 1024;

interface Desc {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  artifactType?: unknown;
  platform?: { architecture?: unknown; os?: unknown };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const size = (d: Desc | undefined): number => (typeof d?.size === 'number' ? d.size : 0);

/**
 * Summarises a stored (already validated) manifest. `readConfig` is asked for an image's config
 * when it is a JSON config of reasonable size, for its `architecture` and `os`.
 */
export async function manifestSummary(
  bytes: Buffer,
  mediaType: string,
  readConfig: (digest: string) => Promise<Buffer>,
): Promise<ManifestSummary> {
  let m: {
    config?: Desc;
    layers?: Desc[];
    manifests?: Desc[];
    blobs?: Desc[];
    subject?: Desc;
    artifactType?: unknown;
  };
  try {
    m = JSON.parse(bytes.toString('utf8')) as typeof m;
  } catch {
    return { mediaType, imageSize: bytes.length };
  }
  const out: ManifestSummary = { mediaType, imageSize: bytes.length };
  const subject = str(m.subject?.digest);
  if (subject) out.subject = subject;
  if (Array.isArray(m.manifests)) {
    out.imageSize += m.manifests.reduce((a, d) => a + size(d), 0);
    out.references = m.manifests.map((d) => ({
      digest: str(d.digest) ?? '',
      ...(str(d.platform?.architecture) && { architecture: str(d.platform?.architecture) }),
      ...(str(d.platform?.os) && { os: str(d.platform?.os) }),
    }));
    const at = str(m.artifactType);
    if (at) out.artifactType = at;
    return out;
  }
  const layers = [...(Array.isArray(m.layers) ? m.layers : []), ...(m.blobs ?? [])];
  out.imageSize += size(m.config) + layers.reduce((a, d) => a + size(d), 0);
  const configType = str(m.config?.mediaType);
  if (configType) out.configMediaType = configType;
  const at =
    str(m.artifactType) ?? (configType && !isImageConfig(configType) ? configType : undefined);
  if (at) out.artifactType = at;
  const digest = str(m.config?.digest);
  if (digest && configType && isImageConfig(configType) && size(m.config) <= MAX_CONFIG_BYTES) {
    try {
      const c = JSON.parse((await readConfig(digest)).toString('utf8')) as Record<string, unknown>;
      const arch = str(c.architecture);
      const os = str(c.os);
      if (arch) out.architecture = arch;
      if (os) out.os = os;
    } catch {
      // a config that cannot be read or parsed has no platform to show
    }
  }
  return out;
}

function isImageConfig(mediaType: string): boolean {
  return (
    mediaType === 'application/vnd.oci.image.config.v1+json' ||
    mediaType === 'application/vnd.docker.container.image.v1+json'
  );
}
