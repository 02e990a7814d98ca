import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** The node's configuration. Every key can come from the file, `MERIDIAN_*` or a flag. */
export const NodeConfigSchema = z
  .object({
    /** `host:port` to listen on. Default `127.0.0.1:5000`. */
    listen: z.string().default('127.0.0.1:5000'),
    /** A directory, or `s3://BUCKET[/PREFIX]?endpoint=…&region=…`. Default `./.data/registry`. */
    storage: z.string().min(1).default('./.data/registry'),
    /** This node's region name (logs, metrics). Default `local`. */
    region: z.string().regex(/^[a-z0-9-]+$/).default('local'),
    s3: z
      .object({
        /** Part size for multipart uploads, bytes (≥ 5 MiB). Default 16 MiB. */
        partSize: z.number().int().min(5 * 1024 * 1024).default(16 * 1024 * 1024),
        /** `WHEN_REQUIRED` (default, for custom endpoints) or `WHEN_SUPPORTED`. */
        requestChecksumCalculation: z.enum(['WHEN_REQUIRED', 'WHEN_SUPPORTED']).optional(),
        responseChecksumValidation: z.enum(['WHEN_REQUIRED', 'WHEN_SUPPORTED']).optional(),
      })
      .strict()
      .default({ partSize: 16 * 1024 * 1024 }),
    uploads: z
      .object({
        /** Upload sessions idle longer than this expire. Default 3600 s. */
        idleTimeoutSeconds: z.number().int().positive().default(3600),
        /** How often expired sessions are purged. Default 300 s. */
        purgeIntervalSeconds: z.number().int().positive().default(300),
      })
      .strict()
      .default({ idleTimeoutSeconds: 3600, purgeIntervalSeconds: 300 }),
    cache: z
      .object({
        /** Trust a cached tag/revision lookup this long (ms); local writes invalidate at once. Default 1000. */
        ttlMs: z.number().int().min(0).default(1000),
        /** Memory for cached manifest bodies, bytes. Default 64 MiB. */
        maxContentBytes: z.number().int().positive().default(64 * 1024 * 1024),
      })
      .strict()
      .default({ ttlMs: 1000, maxContentBytes: 64 * 1024 * 1024 }),
    log: z
      .object({
        /** pino level. Default `info`. */
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type NodeConfig = z.infer<typeof NodeConfigSchema>;

export class ConfigError extends Error {}

type Json = Record<string, unknown>;

/** `idleTimeoutSeconds` → `IDLE_TIMEOUT_SECONDS` */
function envSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Leaf key paths of a zod object schema, e.g. [['uploads','idleTimeoutSeconds'], ...]. */
function leafPaths(schema: z.ZodType, prefix: string[] = []): { path: string[]; schema: z.ZodType }[] {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
  }
  return [{ path: prefix, schema: s }];
}

function setPath(obj: Json, path: string[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Json;
  }
  o[path[path.length - 1]!] = value;
}

function coerce(raw: string, schema: z.ZodType): unknown {
  if (schema instanceof z.ZodNumber) return raw.trim() === '' ? raw : Number(raw);
  if (schema instanceof z.ZodBoolean) return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  return raw;
}

/**
 * Resolves configuration: defaults < file < `MERIDIAN_*` environment < flags. Throws a
 * `ConfigError` naming the bad key (as a dotted path and as its environment variable).
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Json } = {},
): z.infer<S> {
  let raw: Json = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${opts.file}: ${(err as Error).message}`);
    }
    const parsed: unknown = opts.file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`${opts.file}: expected a mapping`);
      raw = parsed as Json;
    }
  }
  const env = opts.env ?? process.env;
  for (const { path, schema: leaf } of leafPaths(schema)) {
    const name = `MERIDIAN_${path.map(envSegment).join('_')}`;
    const v = env[name];
    if (v !== undefined) setPath(raw, path, coerce(v, leaf));
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) {
    if (v !== undefined) setPath(raw, k.split('.'), v);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const msgs = result.error.issues.map((i) => {
      const keys = i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : [i.path.join('.')];
      return keys
        .map((key) => {
          const envName = `MERIDIAN_${key.split('.').map(envSegment).join('_')}`;
          return `config key "${key}" (${envName}): ${i.code === 'unrecognized_keys' ? 'unknown key' : i.message}`;
        })
        .join('\n');
    });
    throw new ConfigError(`invalid configuration:\n${msgs.join('\n')}`);
  }
  return result.data;
}
