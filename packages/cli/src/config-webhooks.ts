import { z } from 'zod';

const DEFAULTS = {
  enabled: true,
  delivery: 'node' as const,
  allowPrivateTargets: [] as string[],
  concurrency: 16,
  perEndpointConcurrency: 4,
  timeoutMs: 10_000,
  retryBaseMs: 1000,
  retryMaxMs: 3_600_000,
  horizonHours: 24,
  historyDays: 7,
};

/** `webhooks.*`: delivery of webhooks (docs/adr/0013-webhooks.md). */
export const WebhooksConfigSchema = z
  .object({
    /** Deliver webhooks (on the primary; needs `redis`). Definitions can be managed either way. Default true. */
    enabled: z.boolean().default(DEFAULTS.enabled),
    /**
     * Who sends deliveries: the primary `node` (default), or the `workers` (`meridian worker`),
     * so the node's event loop serves only requests. The primary queues them either way.
     */
    delivery: z.enum(['node', 'workers']).default(DEFAULTS.delivery),
    /** The registry's public host in payloads (`request.host`). Default: the primary region's endpoint host, else `listen`. */
    host: z.string().min(1).optional(),
    /**
     * Private, loopback, link-local or reserved ranges webhooks may reach (refused by default,
     * SSRF): `loopback`, `private`, `linklocal`, addresses or CIDR ranges. Default none.
     */
    allowPrivateTargets: z.array(z.string()).default(DEFAULTS.allowPrivateTargets),
    /** Deliveries in flight at once per node. Default 16. */
    concurrency: z.number().int().positive().default(DEFAULTS.concurrency),
    /** Deliveries in flight at once to one webhook, per node. Default 4. */
    perEndpointConcurrency: z.number().int().positive().default(DEFAULTS.perEndpointConcurrency),
    /** A receiver that has not answered within this long failed the attempt, ms. Default 10000. */
    timeoutMs: z.number().int().positive().default(DEFAULTS.timeoutMs),
    /** First retry after about this long, ms (doubling, ±20 % jitter). Default 1000. */
    retryBaseMs: z.number().int().positive().default(DEFAULTS.retryBaseMs),
    /** Longest wait between two attempts, ms. Default 3600000 (1 h). */
    retryMaxMs: z.number().int().positive().default(DEFAULTS.retryMaxMs),
    /** A delivery still failing this long after its event is dead-lettered, h. Default 24. */
    horizonHours: z.number().positive().default(DEFAULTS.horizonHours),
    /** Delivery history kept, days. Default 7. */
    historyDays: z.number().positive().default(DEFAULTS.historyDays),
  })
  .strict()
  .default({ ...DEFAULTS });

export type WebhooksConfig = z.infer<typeof WebhooksConfigSchema>;
