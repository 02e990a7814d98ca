import type { Command } from 'commander';
import { callApi, table, type ApiConn } from './replication-cmd';

/** `24h`, `30m`, `90s`, `2d` or a number of seconds → seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new Error(`--grace: not a duration: ${s} (e.g. 24h, 30m, 3600)`);
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return n * unit;
}

interface Report {
  region: string;
  role: string;
  mode: string;
  dryRun: boolean;
  graceSeconds: number;
  repositories: number;
  manifests: number;
  blobsScanned: number;
  linksRemoved: number;
  referrerEntriesRemoved: number;
  blobsDeleted: number;
  bytesFreed: number;
  conflicts: number;
  uploadsPurged: number;
  stagingRemoved: number;
  unreadableRepositories: string[];
  durationMs: number;
}

/** A byte count as operators read it (`212.4 MiB`); `meridian purge` prints the same. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** The report as the table `meridian gc` prints. */
export function formatReport(r: Report): string {
  const verb = r.dryRun ? 'would free' : 'freed';
  const rows = [
    ['OBJECTS', r.dryRun ? 'WOULD REMOVE' : 'REMOVED'],
    ['blobs', `${r.blobsDeleted} (${bytes(r.bytesFreed)})`],
    ['repository links', String(r.linksRemoved)],
    ['referrer entries', String(r.referrerEntriesRemoved)],
    ['upload sessions', String(r.uploadsPurged)],
    ['staged copies', String(r.stagingRemoved)],
  ];
  const lines = [
    `region ${r.region} (${r.role}, ${r.mode})${r.dryRun ? ', dry run' : ''}: ${verb} ${bytes(r.bytesFreed)} in ${(r.durationMs / 1000).toFixed(1)} s, grace ${r.graceSeconds} s`,
    `scanned ${r.repositories} repositories, ${r.manifests} manifests, ${r.blobsScanned} blobs; ${r.conflicts} candidates rescued by concurrent pushes`,
    table(rows),
  ];
  if (r.unreadableRepositories.length > 0)
    lines.push(
      `kept every link of ${r.unreadableRepositories.length} repositories with unreadable manifests: ${r.unreadableRepositories.slice(0, 5).join(', ')}`,
    );
  return lines.join('\n');
}

/**
 * `meridian gc [--region R] [--dry-run] [--grace 24h]`: asks a node (Owner) to run garbage
 * collection of a region now and prints what it freed (or would free). Progress of the run is
 * shown on standard error while it lasts.
 */
export async function gcCommand(
  conn: ApiConn,
  o: { region?: string; dryRun?: boolean; grace?: string; incremental?: boolean },
): Promise<string> {
  const body: Record<string, unknown> = {
    dryRun: o.dryRun ?? false,
    mode: o.incremental ? 'incremental' : 'full',
  };
  if (o.region) body.region = o.region;
  if (o.grace !== undefined) body.graceSeconds = parseDuration(o.grace);
  const tty = process.stderr.isTTY;
  let done = false;
  const poll = (async () => {
    while (tty && !done) {
      await new Promise((r) => setTimeout(r, 1000));
      const h = (await callApi(conn, 'GET', '/meridian/v1/admin/gc').catch(() => undefined)) as
        | {
            runs: {
              region: string;
              finishedAt?: number;
              progress?: { phase: string; done: number; total: number };
            }[];
          }
        | undefined;
      const active = h?.runs.find(
        (r) => !r.finishedAt && r.progress && (!o.region || r.region === o.region),
      );
      if (active?.progress && !done) {
        const { phase, done: n, total } = active.progress;
        const width = 30;
        const filled = total > 0 ? Math.round((n / total) * width) : 0;
        process.stderr.write(
          `\r${phase.padEnd(7)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${n}/${total}`,
        );
      }
    }
  })();
  try {
    const report = (await callApi(conn, 'POST', '/meridian/v1/admin/gc', body)) as Report;
    return formatReport(report);
  } finally {
    done = true;
    await poll;
    if (tty) process.stderr.write('\r\x1b[K');
  }
}

export function registerGcCommand(program: Command, apiConn: (c: Command) => Command): void {
  apiConn(
    program
      .command('gc')
      .description(
        'run garbage collection of a region now (Owner): frees blobs, links, referrer entries, upload sessions and staged copies nothing references any more',
      )
      .option('--region <name>', "the region to collect (default: the node's own)")
      .option('--dry-run', 'report what would be freed; delete nothing')
      .option(
        '--incremental',
        'only what deletes left behind since the last run (the scheduled kind), not a full mark-and-sweep',
      )
      .option(
        '--grace <duration>',
        'keep anything younger than this (e.g. 24h; at least gc.minGraceSeconds)',
      ),
  ).action(
    async (
      o: ApiConn & { region?: string; dryRun?: boolean; grace?: string; incremental?: boolean },
    ) => {
      process.stdout.write(`${await gcCommand(o, o)}\n`);
    },
  );
}
