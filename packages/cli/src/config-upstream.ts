import { z } from 'zod';

const DEFAULTS = { importConcurrency: 2, timeoutMs: 30_000 };

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
  })
  .strict()
  .default({ ...DEFAULTS });

export type UpstreamConfig = z.infer<typeof UpstreamConfigSchema>;
