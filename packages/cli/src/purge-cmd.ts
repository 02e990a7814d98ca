import type { Command } from 'commander';
import { bytes } from './gc-cmd';
import { callApi, table, type ApiConn } from './replication-cmd';

interface RepoReport {
  repository: string;
  tagsBefore: number;
  tags: { tag: string; digest: string }[];
  manifests: { digest: string }[];
  bytes: number;
  refused?: string;
  locked: { tag?: string; digest: string; by: string }[];
  tagsDeleted: number;
  manifestsDeleted: number;
}

interface Report {
  dryRun: boolean;
  repositories: RepoReport[];
  totals: {
    repositories: number;
    tags: number;
    manifests: number;
    bytes: number;
    refused: number;
    locked: number;
  };
}

/** The diff `meridian purge` prints: per repository, what goes (or would), and the rails. */
export function formatPurge(r: Report): string {
  const lines: string[] = [];
  const rows = [['REPOSITORY', 'TAGS', 'MANIFESTS', 'BYTES', 'SAMPLE', 'NOTE']];
  for (const p of r.repositories) {
    const sample = p.tags[0]
      ? `${p.tags[0].tag} (${p.tags[0].digest.slice(0, 19)})`
      : (p.manifests[0]?.digest.slice(0, 19) ?? '');
    rows.push([
      p.repository,
      r.dryRun || p.refused
        ? `${p.tags.length}/${p.tagsBefore}`
        : `${p.tagsDeleted}/${p.tagsBefore}`,
      String(r.dryRun || p.refused ? p.manifests.length : p.manifestsDeleted),
      bytes(p.bytes),
      sample,
      p.refused
        ? `REFUSED: ${p.refused}`
        : p.locked.length > 0
          ? `${p.locked.length} kept by locks (${p.locked[0]!.by})`
          : '',
    ]);
  }
  const t = r.totals;
  lines.push(
    `${r.dryRun ? 'dry run: would remove' : 'removed'} ${t.tags} tags and ${t.manifests} manifests in ${t.repositories} repositories (${bytes(t.bytes)} for garbage collection to free)`,
  );
  if (r.repositories.length > 0) lines.push(table(rows));
  if (t.refused > 0)
    lines.push(
      `${t.refused} repositories refused by a rail and left untouched (see NOTE; --force)`,
    );
  return lines.join('\n');
}

/**
 * `meridian purge --filter 'REPO_REGEX:TAG_REGEX' … [--ago 30d] [--not-pulled-for 90d] [--keep N]
 * [--untagged] [--include-locked] [--dry-run] [--force]`.
 */
export function registerPurgeCommand(program: Command, apiConn: (c: Command) => Command): void {
  apiConn(
    program
      .command('purge')
      .description(
        'remove tags (and with --untagged the manifests nothing keeps) that a filter names, on the primary (Owner); every region follows and GC frees the bytes',
      )
      .requiredOption(
        '--filter <REPO_REGEX:TAG_REGEX>',
        'repositories and tags to purge, each regex matching the whole name (repeatable)',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option(
        '--ago <duration>',
        'only tags last moved longer ago than this (e.g. 30d; at most 100 years)',
      )
      .option(
        '--not-pulled-for <duration>',
        'only tags neither pulled (tag or manifest, in any region) nor pushed for this long (e.g. 90d)',
      )
      .option('--keep <n>', 'keep the newest N matching tags of each repository', (v) => {
        if (!/^\d+$/.test(v)) throw new Error(`--keep: not a number: ${v}`);
        return Number(v);
      })
      .option(
        '--untagged',
        'also remove manifests no tag keeps (with their index children and referrers)',
      )
      .option(
        '--include-locked',
        "also remove locked tags and manifests, lifting their own locks first (a repository's lock still holds)",
      )
      .option('--dry-run', 'print what would be removed; remove nothing')
      .option(
        '--force',
        'go past the rails (a repository losing over half of its tags, or its last tag)',
      ),
  ).action(
    async (
      o: ApiConn & {
        filter: string[];
        ago?: string;
        notPulledFor?: string;
        keep?: number;
        untagged?: boolean;
        includeLocked?: boolean;
        dryRun?: boolean;
        force?: boolean;
      },
    ) => {
      const report = (await callApi(o, 'POST', '/meridian/v1/admin/purge', {
        filters: o.filter,
        ...(o.ago !== undefined ? { ago: o.ago } : {}),
        ...(o.notPulledFor !== undefined ? { notPulledFor: o.notPulledFor } : {}),
        ...(o.keep !== undefined ? { keep: o.keep } : {}),
        untagged: o.untagged ?? false,
        ...(o.includeLocked ? { includeLocked: true } : {}),
        dryRun: o.dryRun ?? false,
        force: o.force ?? false,
      })) as Report;
      process.stdout.write(`${formatPurge(report)}\n`);
      if (report.totals.refused > 0) process.exitCode = 3;
    },
  );
}
