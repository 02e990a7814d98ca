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
  /**
   * Once the node listens: on a primary whose store was never initialised, creates the `owner`
   * identity and prints its generated password (so a start that fails before serving, e.g. on a
   * port in use, creates nothing and the next start prints it); warns when
   * MERIDIAN_OWNER_PASSWORD is set but not used. Never throws (a failure is logged, and the
   * next start tries again).
   */
  afterListen: () => Promise<void>;
}

/**
 * Starts identity and access for a node, unless `auth.enabled` is false. Credentials come from
 * the primary region's store (this node's own when it is the primary or alone) and are mirrored
 * into this region's store. Failed logins are counted in the cluster's Redis (per region) when
 * there is one. The owner is created by `afterListen`, never before the node serves.
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
      redisUrl: config.redis,
      redisPrefix: `${config.replication.prefix}:auth:login:${config.region}`,
    },
    kdf: { concurrency: a.throttle.kdfConcurrency, maxQueue: a.throttle.kdfQueue },
    failureDelayMs: a.throttle.failureDelayMs,
    log,
  });
  await service.start();
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
    afterListen: () =>
      bootstrapOwner(service, node.role === 'primary', ownerPassword || undefined, log).catch(
        (err: unknown) =>
          // Nothing was marked initialised: the next start tries again (and prints it).
          log.error({ err: (err as Error).message }, 'auth: could not create the Owner identity'),
      ),
  };
}

async function bootstrapOwner(
  service: AuthService,
  primary: boolean,
  ownerPassword: string | undefined,
  log: Logger,
): Promise<void> {
  const ignored = (why: string) => {
    const msg = `MERIDIAN_OWNER_PASSWORD is set but ignored: ${why}`;
    log.warn(msg);
    process.stderr.write(
      `meridian: ${msg}. To change the owner's password: meridian user password owner; ` +
        `without a login: meridian admin reset-owner --storage <the primary region's storage>\n`,
    );
  };
  const { snapshot } = service.credentials;
  if (!primary) {
    // A cluster's nodes often share one environment (`meridian dev` does): not worth a warning.
    if (ownerPassword) log.info('MERIDIAN_OWNER_PASSWORD is used by the primary only');
    return;
  }
  if (snapshot.initialized) {
    if (ownerPassword && !(await service.ownerHasPassword(ownerPassword)))
      ignored('this storage already has its owner (it is only used on the first start)');
    return;
  }
  const created = await service.bootstrapOwner(ownerPassword);
  if (created?.generatedPassword)
    process.stderr.write(
      `\nmeridian: created the Owner identity "${created.name}" with password ${created.generatedPassword}\n` +
        `meridian: it is shown only this once; change it with: meridian user password ${created.name}\n` +
        `meridian: lost it? meridian admin reset-owner --storage <this node's storage>\n\n`,
    );
  else if (created)
    log.info(
      { identity: created.name },
      'auth: created the Owner identity from MERIDIAN_OWNER_PASSWORD',
    );
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
