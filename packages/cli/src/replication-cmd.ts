import type { ObjectStatus, RegionHealth } from '@meridian/replication';
import { resolveConn } from './login';
import { apiErrorMessage, apiRequest, ApiUnreachable, type ApiAnswer } from './api-request';

/**
 * `meridian replication status|regions|reconcile`: clients of a node's replication API
 * (`/meridian/v1/replication/*`), so an operator needs a node's URL and a login, not every
 * region's storage and Redis. Connection: `--url`/`MERIDIAN_URL` (a node or the gateway; default
 * http://127.0.0.1:5000), `--user`/`MERIDIAN_USERNAME` (default `owner`),
 * `--password`/`MERIDIAN_PASSWORD` (sent when given; nodes with auth on need it).
 */
export interface ApiConn {
  url?: string;
  user?: string;
  password?: string;
}

export class ReplicationCliError extends Error {}

export async function callApi(
  c: ApiConn,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const conn = resolveConn(c);
  const { url, password } = conn;
  let answer: ApiAnswer;
  try {
    answer = await apiRequest(conn, method, path, body);
  } catch (err) {
    if (!(err instanceof ApiUnreachable)) throw err;
    throw new ReplicationCliError(`cannot reach ${url}: ${err.message}`);
  }
  const { res, text, json } = answer;
  if (!res.ok) {
    const msg = apiErrorMessage(json);
    const hint =
      res.status === 401 && !password
        ? ' (a password is needed: meridian login, --password or MERIDIAN_PASSWORD)'
        : '';
    throw new ReplicationCliError(
      `${url}${path}: ${res.status} ${msg ?? text.slice(0, 200)}${hint}`,
    );
  }
  return json;
}

/**
 * `meridian replication reconcile [--region R]`: asks a node (`Owner`) to queue a reconcile run
 * of each replica region (all, or the named ones) for the workers, which compare the region with
 * the primary and queue what differs — the same job their schedule runs.
 */
export async function reconcileCommand(
  conn: ApiConn,
  only: string[],
  opts: { wait?: boolean; timeoutSeconds?: number } = {},
): Promise<string> {
  const body = (await callApi(
    conn,
    'POST',
    '/meridian/v1/admin/replication/reconcile',
    only.length ? { regions: only } : {},
  )) as { queued: { region: string; job: string }[] };
  if (opts.wait === false)
    return `${table([['REGION', 'JOB'], ...body.queued.map((q) => [q.region, q.job])])}\n(queued: the workers serving each region run it)`;
  // Wait for each run, then show what it found: the differences it queued for the workers.
  const deadline = Date.now() + (opts.timeoutSeconds ?? 120) * 1000;
  const runs: RunState[] = [];
  for (const q of body.queued) {
    const path = `/meridian/v1/admin/replication/reconcile/${encodeURIComponent(q.region)}/${encodeURIComponent(q.job)}`;
    let run = (await callApi(conn, 'GET', path)) as RunState;
    while ((run.state === 'waiting' || run.state === 'active') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      run = (await callApi(conn, 'GET', path)) as RunState;
    }
    runs.push(run);
  }
  const KINDS = ['tags', 'manifests', 'blobs', 'referrers', 'locks'] as const;
  const rows = runs.map((r) => [
    r.region,
    r.job,
    r.state === 'waiting' || r.state === 'active' ? `${r.state} (timed out)` : r.state,
    r.report ? String(r.report.repositories) : '-',
    ...KINDS.map((k) => (r.report ? String(r.report.drift[k]) : '-')),
  ]);
  const lines = [
    table([
      ['REGION', 'JOB', 'STATE', 'REPOSITORIES', ...KINDS.map((k) => k.toUpperCase())],
      ...rows,
    ]),
  ];
  const done = runs.filter((r) => r.report);
  const drift = done.reduce((a, r) => a + KINDS.reduce((b, k) => b + r.report!.drift[k], 0), 0);
  for (const r of runs)
    if (r.state === 'failed') lines.push(`${r.region}: the run failed: ${r.failedReason ?? ''}`);
    else if (!r.report)
      lines.push(
        `${r.region}: not finished after ${opts.timeoutSeconds ?? 120} s (are its workers running?)`,
      );
  if (done.length === runs.length)
    lines.push(
      drift === 0
        ? 'nothing to do: every region holds what the primary holds'
        : `queued ${drift} difference(s) for the workers`,
    );
  return lines.join('\n');
}

interface RunState {
  region: string;
  job: string;
  state: 'waiting' | 'active' | 'completed' | 'failed' | 'unknown';
  report?: {
    repositories: number;
    drift: { tags: number; manifests: number; blobs: number; referrers: number; locks: number };
  };
  failedReason?: string;
}

/** `meridian replication regions`: every region's health, queue and lag. */
export async function regionsCommand(conn: ApiConn): Promise<string> {
  const body = (await callApi(conn, 'GET', '/meridian/v1/replication/regions')) as {
    regions: RegionHealth[];
  };
  return table([
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
    ...body.regions.map((h) => [
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
  ]);
}

/** `meridian replication status --repository R --reference T`: one object's state per region. */
export async function statusCommand(
  conn: ApiConn,
  repository?: string,
  reference?: string,
): Promise<string> {
  if (!repository || !reference)
    throw new ReplicationCliError(
      'replication status needs a target: --repository NAME --reference TAG|DIGEST ' +
        "(for every region's health, queue and lag: meridian replication regions)",
    );
  const q = new URLSearchParams({ repository, reference });
  const body = (await callApi(conn, 'GET', `/meridian/v1/replication/status?${q.toString()}`)) as {
    regions: ObjectStatus[];
  };
  return [
    `${repository}:${reference}`,
    table([
      ['REGION', 'STATE', 'DIGEST', 'REPLICATED AT', 'LAG(s)'],
      ...body.regions.map((o) => [
        o.region,
        o.state,
        o.digest ? `${o.digest.slice(0, 19)}…` : '-',
        o.replicatedAt ?? '-',
        o.lagSeconds === null ? '-' : o.lagSeconds.toFixed(2),
      ]),
    ]),
  ].join('\n');
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
