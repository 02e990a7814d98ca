import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RegionScope } from '@meridian/replication';
import { GcConfigSchema, SoftDeleteConfigSchema } from './config-gc';
import { RetentionConfigSchema } from './config-retention';
import { AuthConfigSchema } from './config-auth';
import { RedisConfigSchema } from './config-redis';
import { WebhooksConfigSchema } from './config-webhooks';
import { UpstreamConfigSchema } from './config-upstream';

/** The node's configuration. Every key can come from the file, `MERIDIAN_*` or a flag. */
export const NodeConfigSchema = z
  .object({
    /** `host:port` to listen on. Default: the region's endpoint in `regions`, else `127.0.0.1:5000`. */
    listen: z.string().optional(),
    /** A directory, or `s3://BUCKET[/PREFIX]?endpoint=…&region=…`. Default: the region's, else `./.data/registry`. */
    storage: z.string().min(1).optional(),
    /** This node's region name (logs, metrics; picks the entry in `regions`). Default `local`. */
    region: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('local'),
    /** `primary` accepts pushes; `replica` serves pulls from its own storage. Default `primary`. */
    role: z.enum(['primary', 'replica']).default('primary'),
    /** The primary's endpoint (a replica's fallback). Default: the primary in `regions`. */
    primary: z.string().url().optional(),
    /** Redis for queues, tag announcements and status: a URL, or Sentinels. Required for a cluster. */
    redis: RedisConfigSchema,
    /** The cluster: every region's name, role, endpoint and storage. */
    regions: z
      .array(
        z
          .object({
            name: z.string().regex(/^[a-z0-9-]+$/),
            role: z.enum(['primary', 'replica']),
            /** Base URL clients and other regions reach this region at. */
            endpoint: z.string().url(),
            /**
             * The region's nodes' base URLs, when the gateway spreads the region's requests across
             * them itself (health-checked one by one). Default: `[endpoint]` (a load balancer, or one node).
             */
            nodes: z.array(z.string().url()).min(1).optional(),
            /** A directory or an s3:// URL (each region its own bucket or prefix). */
            storage: z.string().min(1),
            /**
             * What a replica region replicates (ADR 0026): repository globs in and out of scope,
             * and whether what it serves by fallback outside its scope is kept. Default: everything.
             */
            scope: z
              .object({
                repositories: z.array(z.string()).optional(),
                exclude: z.array(z.string()).optional(),
                keepFetched: z.boolean().optional(),
              })
              .strict()
              .superRefine((s, ctx) => {
                const bad = RegionScope.validate(s);
                if (bad) ctx.addIssue({ code: 'custom', message: bad });
              })
              .optional(),
          })
          .strict(),
      )
      .default([]),
    replication: z
      .object({
        /** Redis key prefix for queues and replication state. Default `meridian`. */
        prefix: z.string().default('meridian'),
        /**
         * Sync jobs run at once per region by one worker. Default 16: a job mostly waits on
         * round trips to the primary's region, so fewer leave a burst queued (issue 18).
         */
        concurrency: z.number().int().positive().default(16),
        /** How often workers compare every region with the primary. Default 60 s. */
        reconcileIntervalSeconds: z.number().int().positive().default(60),
      })
      .strict()
      .default({ prefix: 'meridian', concurrency: 16, reconcileIntervalSeconds: 60 }),
    s3: z
      .object({
        /** Part size for multipart uploads, bytes (≥ 5 MiB). Default 16 MiB. */
        partSize: z
          .number()
          .int()
          .min(5 * 1024 * 1024)
          .default(16 * 1024 * 1024),
        /** `WHEN_REQUIRED` (default, for custom endpoints) or `WHEN_SUPPORTED`. */
        requestChecksumCalculation: z.enum(['WHEN_REQUIRED', 'WHEN_SUPPORTED']).optional(),
        responseChecksumValidation: z.enum(['WHEN_REQUIRED', 'WHEN_SUPPORTED']).optional(),
        /**
         * Answer blob `GET`s (without `Range`) with a `307` to a presigned URL of the region's
         * bucket, so layer bytes go from S3 to the client directly, not through the node or the
         * gateway. Clients must reach the S3 endpoint. Ignored on filesystem storage. Default false.
         */
        redirect: z.boolean().default(false),
        /** How long a redirect's presigned URL stays valid, seconds. Default 600. */
        redirectExpirySeconds: z.number().int().min(1).max(604800).default(600),
      })
      .strict()
      .default({ partSize: 16 * 1024 * 1024, redirect: false, redirectExpirySeconds: 600 }),
    uploads: z
      .object({
        /** Upload sessions idle longer than this expire. Default 3600 s. */
        idleTimeoutSeconds: z.number().int().positive().default(3600),
        /** How often expired sessions are purged. Default 300 s. */
        purgeIntervalSeconds: z.number().int().positive().default(300),
        /**
         * Mount a blob on `POST ?mount=` without `from` when any repository has it (OCI 1.1's
         * optional automatic mount). Off by default: it reveals whether a digest exists anywhere.
         */
        automaticCrossMount: z.boolean().default(false),
      })
      .strict()
      .default({ idleTimeoutSeconds: 3600, purgeIntervalSeconds: 300, automaticCrossMount: false }),
    gc: GcConfigSchema,
    softDelete: SoftDeleteConfigSchema,
    retention: RetentionConfigSchema,
    cache: z
      .object({
        /** Trust a cached tag/revision lookup this long (ms); local writes invalidate at once. Default 1000. */
        ttlMs: z.number().int().min(0).default(1000),
        /** Memory for cached manifest bodies, bytes. Default 64 MiB. */
        maxContentBytes: z
          .number()
          .int()
          .positive()
          .default(64 * 1024 * 1024),
      })
      .strict()
      .default({ ttlMs: 1000, maxContentBytes: 64 * 1024 * 1024 }),
    usage: z
      .object({
        /** Count manifest and tag pulls per region (`_usage/` in the region's storage). Default true. */
        enabled: z.boolean().default(true),
        /** How often a node writes the pulls it counted to its region's storage, seconds. Default 30. */
        flushIntervalSeconds: z.number().int().min(1).max(3600).default(30),
      })
      .strict()
      .default({ enabled: true, flushIntervalSeconds: 30 }),
    gateway: z
      .object({
        /** Addresses the gateway listens on (`host:port`). Default `127.0.0.1:5000`. */
        listen: z.array(z.string()).default(['127.0.0.1:5000']),
        /** Client address ranges → home region (geo-DNS style), first match wins. */
        clients: z.array(z.object({ cidr: z.string(), region: z.string() }).strict()).default([]),
        /** Match `clients` on the client's address (`source`) or the address it connected to (`destination`). */
        matchOn: z.enum(['source', 'destination']).default('source'),
        /** Home region when no rule matches. Default: the primary. */
        defaultRegion: z.string().optional(),
        /** Per home region, the order to try regions for reads. Default: home, then by latency. */
        preference: z.record(z.string(), z.array(z.string())).optional(),
        /** Deep health check period, ms. Default 1000. */
        healthIntervalMs: z.number().int().positive().default(1000),
        /**
         * A read a region has not started answering within this many ms goes to the next region
         * (a hung region); pushes are never cut. 0 disables. Default 5000.
         */
        upstreamTimeoutMs: z.number().int().min(0).default(5000),
        /**
         * A proxied stream (either way) that moves no byte for this long, while its reader
         * waits, is aborted. Default 30000.
         */
        stallTimeoutMs: z.number().int().positive().default(30_000),
      })
      .strict()
      .default({
        listen: ['127.0.0.1:5000'],
        clients: [],
        matchOn: 'source',
        healthIntervalMs: 1000,
        upstreamTimeoutMs: 5000,
        stallTimeoutMs: 30_000,
      }),
    fallback: z
      .object({
        /**
         * A replica's blob stream from the primary that delivers no byte for this long (while a
         * reader waits) is aborted, and a local copy that accepts none is dropped. Default 30000.
         */
        stallTimeoutMs: z.number().int().positive().default(30_000),
        /**
         * A replica's request to the primary (a manifest, a blob's head) that gets no answer in
         * this long fails (a behind tag is then served from the region), and the primary is not
         * asked again for 5 s. Keep it below `gateway.upstreamTimeoutMs`. Default 3000.
         */
        primaryTimeoutMs: z.number().int().positive().default(3000),
      })
      .strict()
      .default({ stallTimeoutMs: 30_000, primaryTimeoutMs: 3000 }),
    worker: z
      .object({
        /** `host:port` where `meridian worker` serves `/metrics` and `/healthz`. Default: none. */
        metricsListen: z.string().optional(),
      })
      .strict()
      .default({}),
    /**
     * Simulated one-way latency between regions, ms, keyed `a-b` (symmetric) — for `meridian dev`
     * on one machine, so "nearest" and "lag" mean something. Applied by the gateway (client →
     * region), replicas (fallback to the primary) and workers (copies from the primary).
     */
    simulatedLatencyMs: z.record(z.string(), z.number().int().min(0)).default({}),
    auth: AuthConfigSchema,
    tls: z
      .object({
        /** PEM certificate (chain) file; with `key`, the node serves HTTPS. */
        cert: z.string().optional(),
        /** PEM private key file. */
        key: z.string().optional(),
      })
      .strict()
      .default({}),
    log: z
      .object({
        /** pino level. Default `info`. */
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
          .default('info'),
        /** Append the JSON log lines to this file instead of stdout. Default: stdout. */
        file: z.string().min(1).optional(),
      })
      .strict()
      .default({ level: 'info' }),
    events: z
      .object({
        /**
         * This node's event journal and subscriber offsets (its own state, never replicated).
         * Default: next to a filesystem store (`<storage>.events/<region>`), else
         * `./.data/events/<region>`.
         */
        journalDir: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    webhooks: WebhooksConfigSchema,
    upstream: UpstreamConfigSchema,
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
function leafPaths(
  schema: z.ZodType,
  prefix: string[] = [],
): { path: string[]; schema: z.ZodType }[] {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  // A preprocessed section (`redis`) also takes its string shorthand at its own path.
  if (s instanceof z.ZodPipe)
    return [{ path: prefix, schema: z.string() }, ...leafPaths(s.out as z.ZodType, prefix)];
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) =>
      leafPaths(v, [...prefix, k]),
    );
  }
  return [{ path: prefix, schema: s }];
}

function setPath(obj: Json, path: string[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    // A string where a section goes is its `url` shorthand (`redis`): keep it under the new keys.
    if (typeof o[k] === 'string') o[k] = { url: o[k] };
    else if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Json;
  }
  o[path[path.length - 1]!] = value;
}

/**
 * Every `MERIDIAN_*` environment variable a schema reads, with its dotted config key (e.g.
 * `MERIDIAN_UPLOADS_IDLE_TIMEOUT_SECONDS` → `uploads.idleTimeoutSeconds`). Arrays and maps take
 * JSON.
 */
export function configEnvNames(schema: z.ZodType): Map<string, string> {
  return new Map(
    leafPaths(schema).map(({ path }) => [envName(path), path.join('.')] as [string, string]),
  );
}

function envName(path: string[]): string {
  return `MERIDIAN_${path.map(envSegment).join('_')}`;
}

function coerce(raw: string, schema: z.ZodType): unknown {
  if (schema instanceof z.ZodArray || schema instanceof z.ZodRecord) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  if (schema instanceof z.ZodNumber) return raw.trim() === '' ? raw : Number(raw);
  if (schema instanceof z.ZodBoolean)
    return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  return raw;
}

/**
 * Resolves configuration: defaults < file < `MERIDIAN_*` environment < flags. Throws a
 * `ConfigError` naming the bad key (as a dotted path and as its environment variable).
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  opts: {
    file?: string;
    env?: NodeJS.ProcessEnv;
    overrides?: Json;
    /** Check `region` names a configured region (nodes). Default true. */ checkRegion?: boolean;
  } = {},
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
      if (typeof parsed !== 'object' || Array.isArray(parsed))
        throw new ConfigError(`${opts.file}: expected a mapping`);
      raw = parsed as Json;
    }
  }
  const env = opts.env ?? process.env;
  for (const { path, schema: leaf } of leafPaths(schema)) {
    const v = env[envName(path)];
    if (v !== undefined) setPath(raw, path, coerce(v, leaf));
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) {
    if (v !== undefined) setPath(raw, k.split('.'), v);
  }
  const result = schema.safeParse(raw);
  if (result.success) {
    const problem = checkCluster(result.data as unknown as NodeConfig, opts.checkRegion ?? true);
    if (problem) throw new ConfigError(`invalid configuration:\n${problem}`);
  }
  if (!result.success) {
    const msgs = result.error.issues.map((i) => {
      const keys =
        i.code === 'unrecognized_keys'
          ? i.keys.map((k) => [...i.path, k].join('.'))
          : [i.path.join('.')];
      return keys
        .map((key) => {
          return `config key "${key}" (${envName(key.split('.'))}): ${i.code === 'unrecognized_keys' ? 'unknown key' : i.message}`;
        })
        .join('\n');
    });
    throw new ConfigError(`invalid configuration:\n${msgs.join('\n')}`);
  }
  return result.data;
}

/** Cross-key rules zod cannot express per key. Returns a message naming the key, or undefined. */
function checkCluster(c: NodeConfig, checkRegion: boolean): string | undefined {
  if (!('regions' in c) || !Array.isArray(c.regions)) return undefined;
  const primaries = c.regions.filter((r) => r.role === 'primary');
  if (c.regions.length > 0 && primaries.length !== 1)
    return `config key "regions" (MERIDIAN_REGIONS): exactly one region must have role primary, found ${primaries.length}`;
  const names = new Set(c.regions.map((r) => r.name));
  if (names.size !== c.regions.length)
    return 'config key "regions" (MERIDIAN_REGIONS): region names must be unique';
  if (checkRegion && c.regions.length > 0 && !names.has(c.region))
    return `config key "region" (MERIDIAN_REGION): "${c.region}" is not one of the regions: ${[...names].join(', ')}`;
  if (c.role === 'replica' && !c.primary && primaries.length === 0)
    return 'config key "primary" (MERIDIAN_PRIMARY): a replica needs the primary\'s endpoint';
  if ('tls' in c && c.tls && Boolean(c.tls.cert) !== Boolean(c.tls.key))
    return 'config key "tls" (MERIDIAN_TLS_CERT, MERIDIAN_TLS_KEY): a certificate needs its key and a key its certificate';
  if (c.regions.length > 1 && !c.redis)
    return 'config key "redis" (MERIDIAN_REDIS): a cluster of several regions needs Redis';
  return undefined;
}

/** A node's effective settings once the cluster description is applied. */
export interface ResolvedNode {
  listen: string;
  storage: string;
  role: 'primary' | 'replica';
  /** The primary's endpoint (for replicas). */
  primaryUrl?: string;
}

/** Applies the region's entry in `regions`; explicit `listen`/`storage`/`primary` still win. */
export function resolveNode(c: NodeConfig): ResolvedNode {
  const entry = c.regions.find((r) => r.name === c.region);
  const primary = c.regions.find((r) => r.role === 'primary');
  const endpointListen = entry ? new URL(entry.endpoint).host : undefined;
  return {
    listen: c.listen ?? endpointListen ?? '127.0.0.1:5000',
    storage: c.storage ?? entry?.storage ?? './.data/registry',
    role: entry?.role ?? c.role,
    primaryUrl: c.primary ?? primary?.endpoint,
  };
}

/** The simulated latency between two regions (0 for the same region or when unset). */
export function latencyBetween(c: NodeConfig, a: string, b: string): number {
  if (a === b) return 0;
  return c.simulatedLatencyMs[`${a}-${b}`] ?? c.simulatedLatencyMs[`${b}-${a}`] ?? 0;
}
