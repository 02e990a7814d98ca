import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AuthService } from '@meridian/auth';
import type { AuthOptions } from '@meridian/registry';
import type { RegionInfo } from '@meridian/replication';
import type { ObjectStore } from '@meridian/storage';
import type { NodeConfig, ResolvedNode } from './config';

export interface NodeAuth {
  service: AuthService;
  /** For `createApp`. */
  app: AuthOptions;
  /** A replica's `Authorization` header for its fallback reads at the primary. */
  upstream: (repository: string) => Promise<string>;
}

/**
 * Starts identity and access for a node, unless `auth.enabled` is false. Credentials come from
 * the primary region's store (this node's own when it is the primary or alone) and are mirrored
 * into this region's store; the primary creates the `owner` identity on first start and its
 * generated password is printed once, to stderr, never logged.
 */
export async function openAuth(
  config: NodeConfig,
  node: ResolvedNode,
  store: ObjectStore,
  regions: RegionInfo[],
  log: Logger,
  ownerPassword = process.env.MERIDIAN_OWNER_PASSWORD,
): Promise<NodeAuth | undefined> {
  const a = config.auth;
  if (!a.enabled) {
    log.warn('auth is off (auth.enabled: false): anyone who can reach this node can push');
    return undefined;
  }
  const primary = regions.find((r) => r.role === 'primary');
  if (node.role === 'replica' && !primary)
    log.warn(
      'auth: this replica has no "regions" (so no access to the primary region’s store); it can only use credentials already in its own store',
    );
  const service = new AuthService({
    registryName: a.registryName,
    region: config.region,
    source: primary?.store ?? store,
    local: store,
    auditStores:
      regions.length > 0 ? regions.map((r) => ({ region: r.name, store: r.store })) : undefined,
    tokenTtlSeconds: a.tokenTtlSeconds,
    refreshTokenTtlSeconds: a.refreshTokenTtlSeconds,
    pollIntervalMs: a.pollIntervalMs,
    throttle: {
      maxFailuresPerIdentity: a.throttle.maxFailuresPerIdentity,
      maxFailuresPerAddress: a.throttle.maxFailuresPerAddress,
      windowMs: a.throttle.windowSeconds * 1000,
    },
    bootstrapOwner: node.role === 'primary',
    ownerPassword: ownerPassword || undefined,
    log,
  });
  const created = await service.start();
  if (created?.generatedPassword)
    process.stderr.write(
      `\nmeridian: created the Owner identity "${created.name}" with password ${created.generatedPassword}\n` +
        `meridian: it is shown only this once; change it with: meridian user password ${created.name}\n\n`,
    );
  else if (created)
    log.info(
      { identity: created.name },
      'auth: created the Owner identity from MERIDIAN_OWNER_PASSWORD',
    );
  return {
    service,
    app: {
      service,
      realm: a.realm,
      protectMetrics: a.protectMetrics,
      protectHealth: a.protectHealth,
      trustedProxies: a.trustedProxies,
    },
    upstream: async (repository) => `Bearer ${await service.nodeToken(repository)}`,
  };
}

/** The PEM files named in `tls`, or undefined for plain HTTP. */
export function readTls(config: NodeConfig): { cert: Buffer; key: Buffer } | undefined {
  if (!config.tls.cert || !config.tls.key) return undefined;
  return { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
}

/**
 * The owner password of a `meridian dev` cluster: MERIDIAN_OWNER_PASSWORD, else the one kept in
 * `<data>/owner-password` (generated on the first run, mode 0600), so the login line it prints
 * stays true for data kept between runs.
 */
export function devOwnerPassword(dataDir: string): string {
  if (process.env.MERIDIAN_OWNER_PASSWORD) return process.env.MERIDIAN_OWNER_PASSWORD;
  const file = join(dataDir, 'owner-password');
  let password: string;
  try {
    password = readFileSync(file, 'utf8').trim();
  } catch {
    password = randomBytes(18).toString('base64url');
    writeFileSync(file, `${password}\n`, { mode: 0o600 });
  }
  process.env.MERIDIAN_OWNER_PASSWORD = password;
  return password;
}
