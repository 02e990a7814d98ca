import { z } from 'zod';

const DEFAULTS = {
  importConcurrency: 2,
  timeoutMs: 30_000,
  allowPrivateNetworks: true,
  allowLoopback: true,
  allowAddresses: [] as string[],
  importHistory: 500,
  importHistoryDays: 30,
};

/** `upstream.*`: imports and pull-through cache rules (docs/adr/0019-import-and-cache-rules.md). */
export const UpstreamConfigSchema = z
  .object({
    /**
     * The key credential sets are encrypted with at rest (AES-256-GCM): 32 bytes, base64. Set it
     * on every node (env `MERIDIAN_UPSTREAM_CREDENTIAL_KEY`). Default none: no credential sets.
     */
    credentialKey: z.string().min(1).optional(),
    /** Imports running at once on the primary; more wait in line. Default 2. */
    importConcurrency: z.number().int().positive().default(DEFAULTS.importConcurrency),
    /** An upstream registry that has not started answering within this long failed, ms. Default 30000. */
    timeoutMs: z.number().int().positive().default(DEFAULTS.timeoutMs),
    /**
     * Imports and cache rules may reach private networks (10/8, 172.16/12, 192.168/16,
     * 100.64/10, fc00::/7) — an on-premises registry. Default true. Cloud metadata addresses in
     * those ranges (100.100.100.200, fd00:ec2::254) stay refused.
     */
    allowPrivateNetworks: z.boolean().default(DEFAULTS.allowPrivateNetworks),
    /** Imports and cache rules may reach loopback (127/8, ::1). Default true. */
    allowLoopback: z.boolean().default(DEFAULTS.allowLoopback),
    /**
     * Addresses or CIDR ranges imports and cache rules may reach although refused otherwise
     * (link-local, cloud metadata, reserved, or loopback/private when those are off). Default none.
     */
    allowAddresses: z.array(z.string()).default(DEFAULTS.allowAddresses),
    /**
     * Import jobs whose records (status, progress, result) are kept in the primary region's
     * store, the newest. Default 500.
     */
    importHistory: z.number().int().positive().default(DEFAULTS.importHistory),
    /** …and for at most this many days after they were last written. Default 30. */
    importHistoryDays: z.number().positive().default(DEFAULTS.importHistoryDays),
  })
  .strict()
  .default({ ...DEFAULTS });

export type UpstreamConfig = z.infer<typeof UpstreamConfigSchema>;
