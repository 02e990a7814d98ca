import type { Logger } from 'pino';
import { ImportJobs } from '@meridian/cache';
import type { Registry } from '@meridian/registry';
import type { NodeConfig, ResolvedNode } from './config';

export interface NodeCache {
  /** The import admin API's service: on the primary only. */
  imports?: ImportJobs;
  close(): Promise<void>;
}

/**
 * Imports and pull-through rules for a node (ADR 0019): the primary runs imports through its
 * own registry, so what they write is journaled and replicated like a push.
 */
export function openCache(
  config: NodeConfig,
  node: ResolvedNode,
  deps: { registry: Registry; log: Logger },
): NodeCache {
  if (node.role !== 'primary') return { close: async () => {} };
  const imports = new ImportJobs({
    registry: deps.registry,
    log: deps.log,
    concurrency: config.upstream.importConcurrency,
    timeoutMs: config.upstream.timeoutMs,
  });
  return { imports, close: async () => {} };
}
