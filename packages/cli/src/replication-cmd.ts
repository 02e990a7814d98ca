import pino from 'pino';
import {
  Reconciler,
  ReplicationStatus,
  type ObjectStatus,
  type RegionHealth,
} from '@meridian/replication';
import { openQueues, openRegions } from './cluster';
import type { NodeConfig } from './config';

/** `meridian replication reconcile [--region R]`: compares now and queues what differs. */
export async function reconcileCommand(config: NodeConfig, only: string[]): Promise<string> {
  const queues = openQueues(config);
  if (!queues) throw new Error('config key "redis" (MERIDIAN_REDIS): reconcile needs Redis');
  const regions = await openRegions(config);
  try {
    const primary = regions.find((r) => r.role === 'primary');
    if (!primary) throw new Error('config key "regions": no primary region');
    const reconciler = new Reconciler(primary.store, queues, pino({ level: 'warn' }));
    const rows: string[][] = [
      ['REGION', 'REPOSITORIES', 'TAGS', 'MANIFESTS', 'BLOBS', 'REFERRERS'],
    ];
    for (const r of regions.filter(
      (x) => x.role === 'replica' && (only.length === 0 || only.includes(x.name)),
    )) {
      const rep = await reconciler.reconcile(r.name, r.store);
      rows.push([
        r.name,
        ...[
          rep.repositories,
          rep.drift.tags,
          rep.drift.manifests,
          rep.drift.blobs,
          rep.drift.referrers,
        ].map(String),
      ]);
    }
    return `${table(rows)}\n(differences were queued for the workers)`;
  } finally {
    await queues.close();
    await Promise.all(regions.map((r) => r.store.close()));
  }
}

/** `meridian replication status [--repository R --reference T]`: regions, and one object. */
export async function statusCommand(
  config: NodeConfig,
  repository?: string,
  reference?: string,
): Promise<string> {
  const queues = openQueues(config);
  const regions = await openRegions(config);
  try {
    const status = new ReplicationStatus(regions, queues);
    const health: RegionHealth[] = await status.regionHealth();
    const out = [
      table([
        [
          'REGION',
          'ROLE',
          'HEALTHY',
          'NODE',
          'STORAGE',
          'WAITING',
          'ACTIVE',
          'DELAYED',
          'FAILED',
          'PENDING',
          'LAG(s)',
        ],
        ...health.map((h) => [
          h.region,
          h.role,
          h.healthy ? 'yes' : 'NO',
          h.node,
          h.storage,
          ...(h.queue
            ? [h.queue.waiting, h.queue.active, h.queue.delayed, h.queue.failed].map(String)
            : ['-', '-', '-', '-']),
          h.pending === null ? '-' : String(h.pending),
          h.lagSeconds === null ? '-' : h.lagSeconds.toFixed(1),
        ]),
      ]),
    ];
    if (repository && reference) {
      const objs: ObjectStatus[] = await status.objectStatus(repository, reference);
      out.push(
        '',
        `${repository}:${reference}`,
        table([
          ['REGION', 'STATE', 'DIGEST', 'REPLICATED AT', 'LAG(s)'],
          ...objs.map((o) => [
            o.region,
            o.state,
            o.digest ? `${o.digest.slice(0, 19)}…` : '-',
            o.replicatedAt ?? '-',
            o.lagSeconds === null ? '-' : o.lagSeconds.toFixed(2),
          ]),
        ]),
      );
    }
    return out.join('\n');
  } finally {
    await queues?.close();
    await Promise.all(regions.map((r) => r.store.close()));
  }
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
