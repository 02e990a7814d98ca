import { Counter } from 'prom-client';

/** Imports finished on this node, by `status` (`succeeded`, `failed`). */
export const importsFinished = new Counter({
  name: 'meridian_import_finished_total',
  help: 'Imports finished on this node, by status',
  labelNames: ['status'] as const,
});

/** Reads of cached repositories on the primary, by `result` (`hit`, `miss`, `revalidated`, `stale`). */
export const cacheResults = new Counter({
  name: 'meridian_cache_results_total',
  help: 'Manifest reads of repositories under a cache rule, by how they were served',
  labelNames: ['result'] as const,
});
