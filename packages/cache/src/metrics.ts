import { Counter } from 'prom-client';

/** Imports finished on this node, by `status` (`succeeded`, `failed`). */
export const importsFinished = new Counter({
  name: 'meridian_import_finished_total',
  help: 'Imports finished on this node, by status',
  labelNames: ['status'] as const,
});
