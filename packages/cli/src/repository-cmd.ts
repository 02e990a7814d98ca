import type { Command } from 'commander';
import { callApi, table, type ApiConn } from './replication-cmd';

/**
 * `meridian repository update|show REPO[:TAG|@DIGEST]`: locks (ADR 0015) over a node's admin API
 * (`/meridian/v1/admin/locks`, Owner). `update` goes to the primary (directly, or through the
 * gateway); `show` asks whichever node `--url` names, so pointed at a replica it shows that
 * region's copy of the locks.
 */

export interface LockRef {
  repository: string;
  tag?: string;
  digest?: string;
}

/** Splits `REPO[:TAG|@DIGEST]`. */
export function parseLockRef(ref: string): LockRef {
  const at = ref.indexOf('@');
  if (at >= 0) return { repository: ref.slice(0, at), digest: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/'))
    return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repository: ref };
}

export function parseBool(flag: string, v: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new Error(`${flag}: expected true or false, got ${v}`);
}

interface Flags {
  deleteEnabled: boolean;
  writeEnabled: boolean;
  readEnabled: boolean;
  listEnabled: boolean;
}
interface Effective extends Flags {
  lockedBy: Partial<Record<keyof Flags, string>>;
}
export interface View {
  repository: string;
  tag?: string;
  digest?: string;
  attributes: Flags & { writeOnce?: string[] };
  effective: Effective;
  seq?: number;
  updatedAt?: string;
  tags?: { tag: string; digest: string; effective: Effective }[];
  tagsTruncated?: boolean;
  manifests?: { digest: string; attributes: Flags; effective: Effective }[];
  lockedTagNames?: string[];
  /** Pulls per tag, across regions (`/meridian/v1/usage`), when the node counts them. */
  usage?: { tags: Record<string, { lastPulledAt?: number; count: number }> };
}

const FLAGS: (keyof Flags)[] = ['deleteEnabled', 'writeEnabled', 'readEnabled', 'listEnabled'];
const HEAD = ['DELETE', 'WRITE', 'READ', 'LIST'];
const cells = (f: Flags) => FLAGS.map((k) => String(f[k]));
const by = (e: Effective) => [...new Set(Object.values(e.lockedBy))].join('; ') || '-';
const short = (d: string) => (d.length > 19 ? `${d.slice(0, 19)}…` : d);

/** A view as `meridian repository show` prints it. */
export function formatView(v: View): string {
  const name = v.tag
    ? `${v.repository}:${v.tag}`
    : v.digest
      ? `${v.repository}@${v.digest}`
      : v.repository;
  const lines = [
    table([
      ['', ...HEAD, 'LOCKED BY'],
      ['attributes', ...cells(v.attributes), ''],
      ['effective', ...cells(v.effective), by(v.effective)],
    ]),
  ];
  lines.unshift(`${name}${v.seq ? ` (changed ${v.updatedAt}, seq ${v.seq})` : ''}`);
  if (v.attributes.writeOnce?.length)
    lines.push(`write-once tags: ${v.attributes.writeOnce.join(', ')}`);
  if (v.tags) {
    const pulls = v.usage?.tags;
    const pulled = (tag: string) => {
      const p = pulls?.[tag];
      return p?.lastPulledAt
        ? [new Date(p.lastPulledAt).toISOString(), String(p.count)]
        : ['never', '0'];
    };
    lines.push('', 'tags (effective lock):');
    lines.push(
      table([
        ['TAG', 'DIGEST', ...HEAD, 'LOCKED BY', ...(pulls ? ['LAST PULLED', 'PULLS'] : [])],
        ...v.tags.map((t) => [
          t.tag,
          short(t.digest),
          ...cells(t.effective),
          by(t.effective),
          ...(pulls ? pulled(t.tag) : []),
        ]),
      ]),
    );
    if (v.tagsTruncated) lines.push('(first 1000 tags)');
  }
  if (v.manifests?.length) {
    lines.push('', 'manifests with a lock of their own (effective lock):');
    lines.push(
      table([
        ['DIGEST', ...HEAD, 'LOCKED BY'],
        ...v.manifests.map((m) => [m.digest, ...cells(m.effective), by(m.effective)]),
      ]),
    );
  }
  if (v.lockedTagNames?.length)
    lines.push('', `locks on tag names not present: ${v.lockedTagNames.join(', ')}`);
  return lines.join('\n');
}

function query(r: LockRef): string {
  const q = new URLSearchParams({ repository: r.repository });
  if (r.tag) q.set('tag', r.tag);
  if (r.digest) q.set('digest', r.digest);
  return q.toString();
}

interface UpdateOptions {
  deleteEnabled?: string;
  writeEnabled?: string;
  readEnabled?: string;
  listEnabled?: string;
  writeOnce?: string[];
  clearWriteOnce?: boolean;
  json?: boolean;
}

/** The body of `PUT /meridian/v1/admin/locks` for `meridian repository update`. */
export function updateBody(ref: string, o: UpdateOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { ...parseLockRef(ref) };
  const opts: [keyof Flags, string | undefined, string][] = [
    ['deleteEnabled', o.deleteEnabled, '--delete-enabled'],
    ['writeEnabled', o.writeEnabled, '--write-enabled'],
    ['readEnabled', o.readEnabled, '--read-enabled'],
    ['listEnabled', o.listEnabled, '--list-enabled'],
  ];
  for (const [k, v, flag] of opts) if (v !== undefined) body[k] = parseBool(flag, v);
  if (o.clearWriteOnce) body.writeOnce = [];
  else if (o.writeOnce && o.writeOnce.length > 0) body.writeOnce = o.writeOnce;
  if (Object.keys(body).length === Object.keys(parseLockRef(ref)).length)
    throw new Error(
      'nothing to change: give --write-enabled, --delete-enabled, --read-enabled, --list-enabled or --write-once',
    );
  return body;
}

const collect = (v: string, prev: string[]) => [...prev, v];

interface Target {
  repository?: string;
  image?: string;
}

/** The target: the positional REF, or az's `--repository REPO` / `--image REPO:TAG|REPO@DIGEST`. */
export function refOf(arg: string | undefined, o: Target): string {
  const given = [arg, o.repository, o.image].filter((x) => x !== undefined);
  if (given.length !== 1)
    throw new Error('name one target: REF, --repository REPO or --image REPO:TAG|REPO@DIGEST');
  return given[0]!;
}

export function registerRepositoryCommands(
  program: Command,
  apiConn: (c: Command) => Command,
): void {
  const repo = program
    .command('repository')
    .description(
      'repositories and tags (az acr repository), and their locks: what may be written, deleted, read and listed',
    );
  apiConn(
    repo
      .command('update')
      .argument('[ref]', 'REPO, REPO:TAG or REPO@DIGEST (or --repository / --image, as az acr)')
      .option('--repository <name>', 'the repository')
      .option('--image <ref>', 'REPO:TAG or REPO@DIGEST')
      .description(
        "change a repository's, a tag's or a manifest's lock on the primary; every region follows",
      )
      .option('--delete-enabled <bool>', 'true|false: may it be deleted')
      .option(
        '--write-enabled <bool>',
        'true|false: may it be overwritten (false also forbids deleting)',
      )
      .option('--read-enabled <bool>', 'true|false: may it be pulled')
      .option('--list-enabled <bool>', 'true|false: does it show in the catalog / tag lists')
      .option(
        '--write-once <pattern>',
        'REPO only: tags matching this glob (or regex:RE) cannot change once pushed; repeatable, replaces the list',
        collect,
        [],
      )
      .option('--clear-write-once', 'REPO only: remove every write-once rule')
      .option('--json', 'print the answer as JSON'),
  ).action(async (arg: string | undefined, o: ApiConn & UpdateOptions & Target) => {
    const ref = refOf(arg, o);
    const v = (await callApi(o, 'PUT', '/meridian/v1/admin/locks', updateBody(ref, o))) as View;
    process.stdout.write(`${o.json ? JSON.stringify(v, null, 2) : formatView(v)}\n`);
  });
  apiConn(
    repo
      .command('show')
      .argument('[ref]', 'REPO, REPO:TAG or REPO@DIGEST (or --repository / --image, as az acr)')
      .option('--repository <name>', 'the repository')
      .option('--image <ref>', 'REPO:TAG or REPO@DIGEST')
      .description("a lock and its effective result (for REPO: every tag's effective lock)")
      .option('--json', 'print the answer as JSON'),
  ).action(async (arg: string | undefined, o: ApiConn & { json?: boolean } & Target) => {
    const ref = refOf(arg, o);
    const r = parseLockRef(ref);
    const v = (await callApi(o, 'GET', `/meridian/v1/admin/locks?${query(r)}`)) as View;
    if (!r.tag && !r.digest) {
      // Last pull per tag, in every region: left out when the node does not count pulls.
      const q = new URLSearchParams({ repository: r.repository });
      const usage = await callApi(o, 'GET', `/meridian/v1/usage?${q.toString()}`).catch(
        () => undefined,
      );
      if (usage) v.usage = usage as View['usage'];
    }
    process.stdout.write(`${o.json ? JSON.stringify(v, null, 2) : formatView(v)}\n`);
  });
}
