import { z } from 'zod';
import { isProxySpec } from './config-proxy';

const LOOPBACK = ['127.0.0.1', '::1', '::ffff:127.0.0.1'] as const;
const THROTTLE_DEFAULTS = {
  maxFailuresPerIdentity: 10,
  maxFailuresPerAddress: 30,
  windowSeconds: 300,
  kdfConcurrency: 1,
  kdfQueue: 16,
  failureDelayMs: 1000,
} as const;
const AUTH_DEFAULTS = {
  enabled: true,
  registryName: 'meridian',
  tokenTtlSeconds: 300,
  refreshTokenTtlSeconds: 2592000,
  pollIntervalMs: 2000,
  protectMetrics: false,
  protectHealth: false,
} as const;

/** `auth.*`: authentication, authorization and login throttling (ADR 0005). */
export const AuthConfigSchema = z
  .object({
    /** Authentication and authorization on every endpoint. Default true; false is for throwaway local use. */
    enabled: z.boolean().default(true),
    /** The registry's name: token service/audience and the admin user's username; the same in every region. Default `meridian`. */
    registryName: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
      .default('meridian'),
    /** Token endpoint URL in challenges. Default: the request's scheme and Host + `/oauth2/token`. */
    realm: z.string().url().optional(),
    /** Access token lifetime, s. Default 300. */
    tokenTtlSeconds: z.number().int().min(60).max(86400).default(300),
    /** Refresh token (`docker login`'s identity token) lifetime, s. Default 30 days. */
    refreshTokenTtlSeconds: z.number().int().positive().default(2592000),
    /** How often a node picks up credential changes, ms. Default 2000. */
    pollIntervalMs: z.number().int().min(100).default(2000),
    /** Require a login for `/metrics`. Default false. */
    protectMetrics: z.boolean().default(false),
    /** Require a login for `/healthz` and `/readyz`. Default false. */
    protectHealth: z.boolean().default(false),
    /**
     * Peers whose X-Forwarded-For/-Proto are believed (the gateway, a load balancer):
     * addresses, CIDR ranges, or `loopback`/`linklocal`/`uniquelocal`. Default loopback.
     */
    trustedProxies: z
      .array(z.string().refine(isProxySpec, 'an IP address, a CIDR range or loopback'))
      .default([...LOOPBACK]),
    throttle: z
      .object({
        /**
         * Failed logins per identity from one client address within the window before 429
         * (that identity from other addresses is unaffected). Default 10.
         */
        maxFailuresPerIdentity: z.number().int().positive().default(10),
        /** Failed logins per client address within the window before 429. Default 30. */
        maxFailuresPerAddress: z.number().int().positive().default(30),
        /** Window, s. Default 300. */
        windowSeconds: z.number().int().positive().default(300),
        /** Password hashes (scrypt) computed at once per process. Default 1. */
        kdfConcurrency: z.number().int().min(1).max(4).default(1),
        /** Hashes waiting for a turn; beyond, 429 with Retry-After. Default 16. */
        kdfQueue: z.number().int().min(0).default(16),
        /** A failed or refused login is answered after this long, ms. Default 1000. */
        failureDelayMs: z.number().int().min(0).max(10_000).default(1000),
      })
      .strict()
      .default({ ...THROTTLE_DEFAULTS }),
  })
  .strict()
  .default({
    ...AUTH_DEFAULTS,
    trustedProxies: [...LOOPBACK],
    throttle: { ...THROTTLE_DEFAULTS },
  });
