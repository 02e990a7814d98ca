import {
  RegionScope,
  ReplicationQueues,
  type RegionInfo,
  type RegionScopes,
} from '@meridian/replication';
import { openStore, type ObjectStore } from '@meridian/storage';
import type { NodeConfig } from './config';

export function storeOptions(c: NodeConfig) {
  return {
    partSize: c.s3.partSize,
    requestChecksumCalculation: c.s3.requestChecksumCalculation,
    responseChecksumValidation: c.s3.responseChecksumValidation,
  };
}

/** Opens every region's store (reusing `own` for this node's region). */
export async function openRegions(
  c: NodeConfig,
  own?: { name: string; store: ObjectStore },
): Promise<RegionInfo[]> {
  return Promise.all(
    c.regions.map(async (r) => ({
      name: r.name,
      role: r.role,
      endpoint: r.endpoint.replace(/\/$/, ''),
      scope: r.scope ? new RegionScope(r.scope) : undefined,
      store: own && own.name === r.name ? own.store : await openStore(r.storage, storeOptions(c)),
    })),
  );
}

/** Each scoped replica region's scope (ADR 0026); regions absent replicate everything. */
export function regionScopes(regions: RegionInfo[]): RegionScopes {
  return new Map(regions.flatMap((r) => (r.scope ? [[r.name, r.scope] as const] : [])));
}

export function openQueues(c: NodeConfig): ReplicationQueues | undefined {
  return c.redis
    ? new ReplicationQueues({ redisUrl: c.redis, prefix: c.replication.prefix })
    : undefined;
}
