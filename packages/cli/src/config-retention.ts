import { z } from 'zod';

const duration = z
  .string()
  .regex(/^\d{1,6}[smhd]$/, 'a duration such as 30d, 12h, 90m (at most 100 years)');

/** One scheduled rule (`retention.rules[]`, docs/adr/0021-retention.md). */
const RuleSchema = z
  .object({
    /** How the CLI, events and the audit log name the rule: `[a-z0-9._-]`, at most 63. */
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/),
    /** Repositories the rule applies to (a regex over the whole name, RE2). */
    repositories: z.string().min(1).max(512),
    /** Tags the rule considers (regex). Default every tag. */
    tags: z.string().min(1).max(512).optional(),
    /** Tags the rule never removes (regex). */
    exclude: z.string().min(1).max(512).optional(),
    /** Keep the newest N considered tags of each repository. */
    keep: z.number().int().min(0).optional(),
    /** Only tags last moved longer ago than this. */
    olderThan: duration.optional(),
    /** Only tags no region pulled (tag or manifest) for this long; never pulled counts from the push. */
    notPulledFor: duration.optional(),
    /** Also remove manifests nothing keeps (with index children and referrers). Default false. */
    untagged: z.boolean().optional(),
    /** Remove locked tags and manifests too, lifting their own locks first. Default false. */
    includeLocked: z.boolean().optional(),
    /** A repository losing more than this share of its tags is refused. Default 0.5. */
    maxShare: z.number().gt(0).max(1).optional(),
  })
  .strict();

/**
 * `retention.*` (docs/adr/0021-retention.md): ACR's untagged-manifest policy and scheduled rules
 * per repository pattern, run on the primary on a BullMQ schedule; every region follows.
 */
export const RetentionConfigSchema = z
  .object({
    /** How often the primary runs retention (due untagged manifests, then each rule). Default 3600 s; 0: only on demand. */
    intervalSeconds: z.number().int().min(0).default(3600),
    untagged: z
      .object({
        /** Off by default (as ACR). */
        enabled: z.boolean().default(false),
        /** Days after its untagging a manifest is deleted (0–365, as ACR). Default 7. */
        days: z.number().int().min(0).max(365).default(7),
      })
      .strict()
      .default({ enabled: false, days: 7 }),
    rules: z
      .array(RuleSchema)
      .max(100)
      .default([])
      .refine((rs) => new Set(rs.map((r) => r.name)).size === rs.length, 'rule names repeat'),
  })
  .strict()
  .default({ intervalSeconds: 3600, untagged: { enabled: false, days: 7 }, rules: [] });
