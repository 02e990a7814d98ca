import type { Command } from 'commander';
import { callApi, table, type ApiConn } from './replication-cmd';

interface Tombstone {
  digest: string;
  mediaType: string;
  size: number;
  tags: string[];
  deletedAt: string;
  expiresAt: string;
}

/** `REPO@DIGEST` → its parts; throws for anything else. */
export function splitReference(ref: string): { repository: string; digest: string } {
  const i = ref.indexOf('@');
  if (i <= 0) throw new Error(`not REPOSITORY@DIGEST: ${ref}`);
  return { repository: ref.slice(0, i), digest: ref.slice(i + 1) };
}

/**
 * `meridian manifest list-deleted REPO | restore REPO@DIGEST [--tag T …] | purge-deleted
 * [REPO[@DIGEST]]`: the soft-delete recycle bin, through a node's admin API (Owner).
 */
export function registerRecycleCommands(program: Command, apiConn: (c: Command) => Command): void {
  const manifest = program
    .command('manifest')
    .description(
      'manifests: their metadata and locks (az acr manifest), and the soft-delete recycle bin',
    );
  apiConn(
    manifest.command('list-deleted <repository>').description('the recycle bin of a repository'),
  ).action(async (repository: string, o: ApiConn) => {
    const r = (await callApi(
      o,
      'GET',
      `/meridian/v1/admin/deleted?repository=${encodeURIComponent(repository)}`,
    )) as { manifests: Tombstone[] };
    const rows = [['DIGEST', 'TAGS', 'SIZE', 'DELETED', 'PURGED AFTER']];
    for (const t of r.manifests)
      rows.push([t.digest, t.tags.join(',') || '-', String(t.size), t.deletedAt, t.expiresAt]);
    process.stdout.write(
      r.manifests.length ? `${table(rows)}\n` : `no soft-deleted manifests in ${repository}\n`,
    );
  });
  apiConn(
    manifest
      .command('restore <reference>')
      .description(
        'bring a soft-deleted manifest back (REPO@DIGEST), with its tags, children and referrers',
      )
      .option(
        '--tag <tag>',
        'restore under this tag instead of its own (repeatable)',
        (v: string, p: string[] = []) => [...p, v],
      ),
  ).action(async (reference: string, o: ApiConn & { tag?: string[] }) => {
    const { repository, digest } = splitReference(reference);
    const r = (await callApi(o, 'POST', '/meridian/v1/admin/deleted/restore', {
      repository,
      digest,
      ...(o.tag ? { tags: o.tag } : {}),
    })) as { restored: { digest: string; tags: string[] }[] };
    for (const m of r.restored)
      process.stdout.write(
        `restored ${repository}@${m.digest}${m.tags.length ? ` (${m.tags.join(', ')})` : ''}\n`,
      );
  });
  apiConn(
    manifest
      .command('purge-deleted [reference]')
      .description(
        'erase soft-deleted manifests for good: REPO (all of it), REPO@DIGEST, or none (every expired one)',
      ),
  ).action(async (reference: string | undefined, o: ApiConn) => {
    const target = !reference
      ? {}
      : reference.includes('@')
        ? splitReference(reference)
        : { repository: reference };
    const r = (await callApi(o, 'POST', '/meridian/v1/admin/deleted/purge', target)) as {
      purged: number;
    };
    process.stdout.write(
      `purged ${r.purged} soft-deleted manifests; garbage collection frees their bytes\n`,
    );
  });
}
