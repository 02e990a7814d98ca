/**
 * `meridian import --source REGISTRY/REPO[:TAG|@DIGEST] …` — asks a primary node to copy an
 * image from another registry (`POST /meridian/v1/admin/import`), then follows the job and
 * shows its progress (bytes and rate) until it ends. The node does the copying: no Docker and
 * no image bytes pass through this process.
 */
import type { Command } from 'commander';
import { AdminApiError, call, print, type Conn } from './admin-client';

const BASE = '/meridian/v1/admin/import';
const collect = (v: string, prev: string[]) => [...prev, v];

interface ImportOpts extends Conn {
  source?: string;
  image: string[];
  repository?: string;
  username?: string;
  sourcePassword?: string;
  credentialSet?: string;
  force?: boolean;
  dryRun?: boolean;
  wait: boolean;
  job?: string;
}

interface Job {
  id: string;
  status: string;
  error?: string;
  result?: unknown;
  progress: { bytesTotal: number; bytesCopied: number; bytesSkipped: number; blobs: number };
}

/** The request body: only the options given. The source password is never printed. */
export function importBody(o: ImportOpts): Record<string, unknown> {
  if (!o.source) throw new AdminApiError('--source REGISTRY/REPO[:TAG|@DIGEST] is required');
  if ((o.username === undefined) !== (o.sourcePassword === undefined))
    throw new AdminApiError('--username and --password go together');
  if (o.username !== undefined && o.credentialSet !== undefined)
    throw new AdminApiError('give --credential-set or --username/--password, not both');
  return {
    source: o.source,
    ...(o.image.length > 0 && { images: o.image }),
    ...(o.repository !== undefined && { repository: o.repository }),
    ...(o.username !== undefined && { username: o.username, password: o.sourcePassword }),
    ...(o.credentialSet !== undefined && { credentialSet: o.credentialSet }),
    ...(o.force && { force: true }),
    ...(o.dryRun && { dryRun: true }),
  };
}

/** `12.3 MiB` */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function registerImportCommand(program: Command): void {
  program
    .command('import')
    .description(
      'copy an image (every platform, its signatures and SBOMs) from another registry into this one, on the primary',
    )
    .option('--source <ref>', 'REGISTRY/REPO[:TAG|@DIGEST], e.g. docker.io/library/alpine:3.20')
    .option(
      '--image <repo:tag>',
      'target (repeatable); default: the source repository and tag',
      collect,
      [],
    )
    .option('--repository <repo>', 'target repository, keeping the source tag')
    .option('--username <name>', "the source registry's username")
    .option('--password <password>', "the source registry's password (with --username)")
    .option('--credential-set <name>', 'a credential set for the source registry')
    .option('--force', 'move target tags that point at other content')
    .option('--dry-run', 'show what would be copied; write nothing')
    .option(
      '--no-wait',
      'print the job and return; follow it with --job ID (or GET /meridian/v1/admin/import/ID)',
    )
    .option(
      '--job <id>',
      'follow an import started earlier (its status outlives a restart of the primary); with --no-wait, print it',
    )
    .option(
      '--url <url>',
      'a primary node or the gateway (env MERIDIAN_URL; default http://127.0.0.1:5000)',
    )
    .option('--user <name>', 'an Owner identity (env MERIDIAN_USERNAME; default owner)')
    .option('--password-stdin', "read the Owner's password from standard input")
    .addHelpText(
      'after',
      "\nThe Owner's password comes from MERIDIAN_PASSWORD or --password-stdin (--password is the source's).",
    )
    .action(async (_o: unknown, cmd: Command) => {
      const raw = cmd.opts<Omit<ImportOpts, 'sourcePassword'> & { password?: string }>();
      const o: ImportOpts = { ...raw, sourcePassword: raw.password, password: undefined };
      const conn: Conn = { url: o.url, user: o.user, passwordStdin: o.passwordStdin };
      if (o.job !== undefined && o.source !== undefined)
        throw new AdminApiError(
          'give --source to start an import or --job to follow one, not both',
        );
      const job =
        o.job !== undefined
          ? ((await call(conn, 'GET', `${BASE}/${encodeURIComponent(o.job)}`)) as Job)
          : ((await call(conn, 'POST', BASE, importBody(o))) as Job);
      if (!o.wait) return print(job);
      const done = await follow(conn, job.id);
      if (done.status === 'failed')
        throw new AdminApiError(`import ${done.id} failed: ${done.error ?? 'unknown error'}`);
      print(done.result);
    });
}

/** How long `follow` keeps asking a node that does not answer (restarting), ms. */
const UNREACHABLE_FOR_MS = 60_000;

/**
 * Polls the job until it ends, drawing a progress line on a terminal. A node that stops
 * answering (a restart) is asked again for a while: the job's record outlives it.
 */
async function follow(conn: Conn, id: string): Promise<Job> {
  const started = Date.now();
  const tty = process.stderr.isTTY;
  let unreachableSince: number | undefined;
  for (;;) {
    let job: Job;
    try {
      job = (await call(conn, 'GET', `${BASE}/${encodeURIComponent(id)}`)) as Job;
      unreachableSince = undefined;
    } catch (err) {
      const unreachable = err instanceof AdminApiError && err.message.startsWith('cannot reach');
      unreachableSince ??= Date.now();
      if (!unreachable || Date.now() - unreachableSince > UNREACHABLE_FOR_MS) throw err;
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (tty) {
      const p = job.progress;
      const secs = Math.max(0.001, (Date.now() - started) / 1000);
      const done = p.bytesCopied + p.bytesSkipped;
      const pct = p.bytesTotal > 0 ? Math.floor((100 * done) / p.bytesTotal) : 0;
      const width = 30;
      const bar = '#'.repeat(Math.floor((pct * width) / 100)).padEnd(width, '.');
      process.stderr.write(
        `\r[${bar}] ${pct}% ${formatBytes(done)}/${formatBytes(p.bytesTotal)} ${formatBytes(p.bytesCopied / secs)}/s  `,
      );
    }
    if (job.status === 'succeeded' || job.status === 'failed') {
      if (tty) process.stderr.write('\n');
      return job;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}
