import type { Command } from 'commander';
import { formatPurge } from './purge-cmd';
import { callApi, table, type ApiConn } from './replication-cmd';

type PurgeReport = Parameters<typeof formatPurge>[0];

interface RunReport {
  at: string;
  dryRun: boolean;
  untagged?: PurgeReport;
  rules: { rule: string; dryRun: boolean; stopped?: string; report: PurgeReport }[];
}

interface Status {
  untagged: { enabled: boolean; days: number; enabledAt?: string; scheduled: number };
  rules: {
    name: string;
    repositories: string;
    tags?: string;
    approved: boolean;
    state: {
      lastRun?: { at: string; dryRun: boolean; totals: { tags: number; manifests: number } };
    };
  }[];
}

/** What `meridian retention run` prints: each part's diff, and which rules wait for approval. */
export function formatRun(r: RunReport): string {
  const out: string[] = [];
  if (r.untagged) out.push(`untagged manifests (policy):\n${formatPurge(r.untagged)}`);
  for (const x of r.rules) {
    out.push(`rule ${x.rule}${x.stopped ? ' (STOPPED: first run, nothing removed)' : ''}:`);
    out.push(formatPurge(x.report));
    if (x.stopped) out.push(x.stopped);
  }
  return out.join('\n');
}

/**
 * `meridian retention list | run [RULE] [--dry-run] [--force] | approve RULE` (ADR 0021): the
 * rules are configuration (`retention.rules`); these read their state and run or approve them
 * through the primary's admin API (Owner).
 */
export function registerRetentionCommands(
  program: Command,
  apiConn: (c: Command) => Command,
): void {
  const retention = program
    .command('retention')
    .description('scheduled retention: the untagged-manifest policy and the rules in the config');
  apiConn(
    retention.command('list').description('the untagged policy and each rule, with its last run'),
  ).action(async (o: ApiConn) => {
    const s = (await callApi(o, 'GET', '/meridian/v1/admin/retention')) as Status;
    const u = s.untagged;
    process.stdout.write(
      `untagged manifests: ${u.enabled ? `deleted ${u.days} days after their untagging (since ${u.enabledAt}); ${u.scheduled} scheduled` : 'off'}\n`,
    );
    const rows = [['RULE', 'REPOSITORIES', 'TAGS', 'APPROVED', 'LAST RUN', 'REMOVED']];
    for (const r of s.rules) {
      const last = r.state.lastRun;
      rows.push([
        r.name,
        r.repositories,
        r.tags ?? '.*',
        r.approved ? 'yes' : 'no (first run only plans)',
        last ? `${last.at}${last.dryRun ? ' (planned)' : ''}` : '-',
        last ? `${last.totals.tags} tags, ${last.totals.manifests} manifests` : '-',
      ]);
    }
    process.stdout.write(s.rules.length ? `${table(rows)}\n` : 'no retention rules configured\n');
  });
  apiConn(
    retention
      .command('run [rule]')
      .description(
        'run retention now (every rule and the untagged policy, or one rule; "untagged" names the policy)',
      )
      .option('--dry-run', 'print what would be removed; remove nothing')
      .option(
        '--force',
        "approve a rule's first run and go past the rails (over the share limit, a repository's last tag)",
      ),
  ).action(async (rule: string | undefined, o: ApiConn & { dryRun?: boolean; force?: boolean }) => {
    const r = (await callApi(o, 'POST', '/meridian/v1/admin/retention/run', {
      ...(rule !== undefined && { rule }),
      dryRun: o.dryRun ?? false,
      force: o.force ?? false,
    })) as RunReport;
    process.stdout.write(`${formatRun(r)}\n`);
    const refused = [r.untagged, ...r.rules.map((x) => x.report)].some(
      (p) => p !== undefined && p.totals.refused > 0,
    );
    // 3, as purge: something was stopped and needs a decision (--force or approve).
    if (refused || r.rules.some((x) => x.stopped)) process.exitCode = 3;
  });
  apiConn(
    retention
      .command('approve <rule>')
      .description("approve a rule's current definition: scheduled runs remove from now on"),
  ).action(async (rule: string, o: ApiConn) => {
    await callApi(o, 'POST', '/meridian/v1/admin/retention/approve', { rule });
    process.stdout.write(`approved retention rule ${rule}\n`);
  });
}
