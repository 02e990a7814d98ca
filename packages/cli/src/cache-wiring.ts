import type { Logger } from 'pino';
import {
  CacheRules,
  CredentialSets,
  ImportJobs,
  parseCredentialKey,
  PullThrough,
  UpstreamGuard,
} from '@meridian/cache';
import { OciError } from '@meridian/oci';
import type { Registry } from '@meridian/registry';
import type { RegionInfo } from '@meridian/replication';
import type { ObjectStore } from '@meridian/storage';
import { ConfigError, type NodeConfig, type ResolvedNode } from './config';

export interface NodeCache {
  /** The import admin API's service: on the primary only. */
  imports?: ImportJobs;
  /** Credential sets, over the primary region's store: when `upstream.credentialKey` is set. */
  credentialSets?: CredentialSets;
  /** Pull-through cache rules, over the primary region's store (every node). */
  cacheRules: CacheRules;
  close(): Promise<void>;
}

/**
 * Imports and pull-through rules for a node (ADR 0019): the primary runs imports through its
 * own registry, so what they write is journaled and replicated like a push. Every node serves
 * the credential-set API over the primary region's store, as it does webhooks.
 */
export function openCache(
  config: NodeConfig,
  node: ResolvedNode,
  deps: { registry: Registry; store: ObjectStore; regions: RegionInfo[]; log: Logger },
): NodeCache {
  const primaryStore = deps.regions.find((r) => r.role === 'primary')?.store ?? deps.store;
  const credentialSets = config.upstream.credentialKey
    ? new CredentialSets(primaryStore, keyOf(config.upstream.credentialKey))
    : undefined;
  const guard = guardOf(config);
  const cacheRules = new CacheRules(primaryStore, {
    checkUpstream: (baseUrl) => guard.checkUrl(baseUrl),
    credentialSetExists: async (name) => {
      if (!credentialSets)
        throw new OciError(
          'UNSUPPORTED',
          'credential sets need upstream.credentialKey on this node',
          undefined,
          400,
        );
      await credentialSets.show(name);
    },
  });
  // Replicas apply no rule themselves: their misses reach the primary, which does.
  if (node.role !== 'primary') return { credentialSets, cacheRules, close: () => guard.close() };
  const detach = new PullThrough(deps.registry, {
    rules: cacheRules,
    credentials: credentialSets && ((name) => credentialSets.credentials(name)),
    log: deps.log,
    timeoutMs: config.upstream.timeoutMs,
    guard,
  }).attach();
  const imports = new ImportJobs({
    registry: deps.registry,
    log: deps.log,
    credentials: credentialSets && ((name) => credentialSets.credentials(name)),
    concurrency: config.upstream.importConcurrency,
    timeoutMs: config.upstream.timeoutMs,
    guard,
    store: primaryStore,
    keep: config.upstream.importHistory,
    keepDays: config.upstream.importHistoryDays,
  });
  return {
    imports,
    credentialSets,
    cacheRules,
    close: async () => {
      detach();
      await imports.close();
      await guard.close();
    },
  };
}

/** The SSRF guard of every upstream request (`upstream.allow*`). */
function guardOf(config: NodeConfig): UpstreamGuard {
  const u = config.upstream;
  try {
    return new UpstreamGuard({
      allowPrivateNetworks: u.allowPrivateNetworks,
      allowLoopback: u.allowLoopback,
      allowAddresses: u.allowAddresses,
    });
  } catch (err) {
    throw new ConfigError(
      `config key "upstream.allowAddresses" (MERIDIAN_UPSTREAM_ALLOW_ADDRESSES): ${(err as Error).message}`,
    );
  }
}

function keyOf(base64: string): Buffer {
  try {
    return parseCredentialKey(base64);
  } catch (err) {
    throw new ConfigError(
      `config key "upstream.credentialKey" (MERIDIAN_UPSTREAM_CREDENTIAL_KEY): ${(err as Error).message}`,
    );
  }
}
