import { validateKey } from './keys';
import type { S3ChecksumMode, S3StoreOptions } from './s3-store';

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const CHECKSUM_MODES: readonly string[] = ['WHEN_REQUIRED', 'WHEN_SUPPORTED'];

/**
 * Parses `s3://BUCKET[/PREFIX]?endpoint=http://127.0.0.1:7480&region=us-east-1` into
 * `S3StoreOptions`. Query parameters: `endpoint`, `region`, `forcePathStyle` (true|false),
 * `partSize` (bytes), `queueSize`, `requestChecksumCalculation`, `responseChecksumValidation`
 * (WHEN_REQUIRED|WHEN_SUPPORTED). Credentials are refused in the URL: they come from the AWS
 * environment. Errors name the bad part, never echo the URL.
 */
export function parseS3Url(url: string): S3StoreOptions {
  const fail = (why: string): never => {
    throw new Error(
      `invalid S3 URL: ${why} (expected s3://BUCKET[/PREFIX]?endpoint=...&region=...)`,
    );
  };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('not a URL');
  }
  if (u.protocol !== 's3:') fail(`scheme must be s3:, got ${u.protocol}`);
  if (u.username || u.password) {
    fail('credentials do not belong in the URL; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY');
  }
  if (u.port) fail('a bucket has no port; use ?endpoint=http://host:port');
  const bucket = u.hostname;
  if (!BUCKET.test(bucket)) fail(`bad bucket name ${JSON.stringify(bucket)}`);
  if (u.hash) fail('unexpected #fragment');

  const opts: S3StoreOptions = { bucket };
  // From the raw text: URL parsing would silently resolve `..` segments in the path.
  const rawPath = url.slice('s3://'.length).split(/[?#]/)[0] ?? '';
  const slash = rawPath.indexOf('/');
  let prefix = '';
  try {
    prefix = slash < 0 ? '' : decodeURIComponent(rawPath.slice(slash + 1)).replace(/\/+$/, '');
  } catch {
    fail('bad percent-encoding in the prefix');
  }
  if (prefix !== '') {
    try {
      validateKey(prefix);
    } catch {
      fail(`bad prefix ${JSON.stringify(prefix)}`);
    }
    opts.prefix = prefix;
  }

  for (const [name, value] of u.searchParams) {
    switch (name) {
      case 'endpoint': {
        let ep: URL | undefined;
        try {
          ep = new URL(value);
        } catch {
          // reported below
        }
        if (!ep || (ep.protocol !== 'http:' && ep.protocol !== 'https:')) {
          fail('endpoint must be an http(s) URL');
        }
        if (ep?.username || ep?.password) fail('credentials do not belong in the endpoint');
        opts.endpoint = value.replace(/\/+$/, '');
        break;
      }
      case 'region':
        if (!/^[a-z0-9-]+$/.test(value)) fail(`bad region ${JSON.stringify(value)}`);
        opts.region = value;
        break;
      case 'forcePathStyle':
        if (value !== 'true' && value !== 'false') fail('forcePathStyle must be true or false');
        opts.forcePathStyle = value === 'true';
        break;
      case 'partSize':
      case 'queueSize': {
        const n = Number(value);
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
          fail(`${name} must be a positive integer`);
        }
        opts[name] = n;
        break;
      }
      case 'requestChecksumCalculation':
      case 'responseChecksumValidation':
        if (!CHECKSUM_MODES.includes(value))
          fail(`${name} must be WHEN_REQUIRED or WHEN_SUPPORTED`);
        opts[name] = value as S3ChecksumMode;
        break;
      default:
        fail(`unknown parameter ${JSON.stringify(name)}`);
    }
  }
  return opts;
}
