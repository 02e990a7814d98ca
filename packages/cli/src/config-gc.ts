import { z } from 'zod';

/** `gc.*`: garbage collection (docs/adr/0012-garbage-collection.md), on by default in every region. */
export const GcConfigSchema = z
  .object({
    /** Scheduled runs: false leaves only on-demand runs (`meridian gc`). Default true. */
    enabled: z.boolean().default(true),
    /**
     * How often the primary collects what deletes left behind (incremental: costs what changed,
     * and replicas then collect what it freed). Default 3600 s.
     */
    intervalSeconds: z.number().int().positive().default(3600),
    /** How often every region runs a full mark-and-sweep (the backstop). Default 604800 s (7 d). */
    fullIntervalSeconds: z.number().int().positive().default(604800),
    /**
     * Links and blobs younger than this are never collected; a HEAD or a manifest that
     * references an older link renews it. Default 86400 s (24 h).
     */
    graceSeconds: z.number().int().min(0).default(86400),
    /**
     * The smallest grace a run accepts (config or `--grace`), so a typo cannot collect a
     * push in progress. Default 3600 s; lower it only on a test cluster.
     */
    minGraceSeconds: z.number().int().min(0).default(3600),
  })
  .strict()
  .refine((g) => g.graceSeconds >= g.minGraceSeconds, {
    message: 'graceSeconds is below minGraceSeconds',
    path: ['graceSeconds'],
  })
  .default({
    enabled: true,
    intervalSeconds: 3600,
    fullIntervalSeconds: 604800,
    graceSeconds: 86400,
    minGraceSeconds: 3600,
  });

/** `softDelete.*` (docs/adr/0017-soft-delete.md): deleted manifests go to a recycle bin first. */
export const SoftDeleteConfigSchema = z
  .object({
    /** Off by default (as ACR): a delete erases at once. */
    enabled: z.boolean().default(false),
    /** Days a soft-deleted manifest can be restored before it is purged (1–90). Default 7. */
    retentionDays: z.number().int().min(1).max(90).default(7),
  })
  .strict()
  .default({ enabled: false, retentionDays: 7 });
