import { z } from 'zod';

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+)(:\d{1,5})?$/;

/**
 * `redis`: one server by URL, or a master behind Redis Sentinel. A string is shorthand for
 * `{ url }` (so `redis: redis://host:6379` and `MERIDIAN_REDIS` keep working); the other keys
 * have their own variables (`MERIDIAN_REDIS_SENTINELS`, `MERIDIAN_REDIS_PASSWORD`, …), so a
 * password can come from a secret while the rest sits in the file. Nodes, workers, the gateway
 * and every BullMQ connection open their clients from it (`@meridian/redis`).
 */
export const RedisConfigSchema = z
  .preprocess(
    (v) => (typeof v === 'string' ? { url: v } : v),
    z
      .object({
        /** `redis://[user:password@]host:port[/db]`; `rediss://` for TLS. Exclusive with `sentinels`. */
        url: z
          .string()
          .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
          .optional(),
        /** Sentinels (`host:port`, port default 26379) that name the master. */
        sentinels: z.array(z.string().regex(HOST_PORT, 'host:port')).min(1).optional(),
        /** The master group the Sentinels monitor. Default `mymaster`. */
        name: z.string().min(1).optional(),
        /** Redis ACL user (AUTH) for the master and replicas. */
        username: z.string().min(1).optional(),
        /** Redis password (AUTH) for the master and replicas. */
        password: z.string().min(1).optional(),
        /** The Sentinels' ACL user, when they require AUTH. */
        sentinelUsername: z.string().min(1).optional(),
        /** The Sentinels' password, when they require AUTH. */
        sentinelPassword: z.string().min(1).optional(),
        /** Database number. Default 0. */
        db: z.number().int().min(0).optional(),
        /** TLS to Redis. Default: off (on with `rediss://`). */
        tls: z
          .object({
            /** PEM file of the CA(s) to trust. Default: the system's. */
            ca: z.string().min(1).optional(),
            /** PEM client certificate file, for servers that ask for one (with `key`). */
            cert: z.string().min(1).optional(),
            /** PEM client key file. */
            key: z.string().min(1).optional(),
            /** Name to verify the server certificate against. Default: the host. */
            servername: z.string().min(1).optional(),
            /** Refuse certificates that do not verify. Default true. */
            rejectUnauthorized: z.boolean().optional(),
          })
          .strict()
          .optional(),
        /** Use `tls` for the Sentinel connections too. Default false. */
        sentinelTls: z.boolean().optional(),
      })
      .strict()
      .refine((r) => !!r.url !== !!r.sentinels, {
        message: 'give either url or sentinels (with name), not both and not neither',
      }),
  )
  .optional();

export type RedisConfig = z.infer<typeof RedisConfigSchema>;
