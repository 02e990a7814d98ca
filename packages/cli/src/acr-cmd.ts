/**
 * `meridian repository list|show-tags|show-manifests|delete|untag` and `meridian manifest
 * list-metadata|show-metadata|update-metadata`: the registry as `az acr` manages it, over a node's
 * or the gateway's `/acr/v1` (ADR 0020), with the same verbs and flags where they make sense and
 * `--output table|json|yaml|tsv`.
 */
import type { Command } from 'commander';
import { resolveConn, type ResolvedConn } from './login';
import { outputFormat, render, type Column } from './output';
import { apiErrorMessage, apiRequest, ApiUnreachable, type ApiAnswer } from './api-request';

export interface AcrOptions {
  url?: string;
  user?: string;
  password?: string;
  output?: string;
  top?: string;
  orderby?: string;
  detail?: boolean;
  repository?: string;
  image?: string;
  name?: string;
  yes?: boolean;
  deleteEnabled?: string;
  writeEnabled?: string;
  readEnabled?: string;
  listEnabled?: string;
}

export class AcrCliError extends Error {}

/** One request to the node; the JSON answer and the `Link` of the next page. */
async function request(
  conn: ResolvedConn,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ json: unknown; next?: string }> {
  let answer: ApiAnswer;
  try {
    answer = await apiRequest(conn, method, path, body);
  } catch (err) {
    if (!(err instanceof ApiUnreachable)) throw err;
    throw new AcrCliError(
      `cannot reach ${conn.url} (${err.message}); point at a node or the gateway with --url, MERIDIAN_URL or meridian login`,
    );
  }
  const { res, text, json } = answer;
  if (!res.ok) {
    const msg = apiErrorMessage(json) ?? text.slice(0, 200);
    let fix = '';
    if (res.status === 401)
      fix =
        conn.password === undefined
          ? '; sign in: meridian login, --password or MERIDIAN_PASSWORD'
          : `; check the password of ${conn.user} (from ${conn.from})`;
    else if (res.status === 403)
      fix = `; ${conn.user} lacks the permission — ask an Owner for a role`;
    else if (res.status === 404 && msg === 'unknown API endpoint')
      fix = `; is ${conn.url} a Meridian node or gateway?`;
    throw new AcrCliError(`${res.status} ${msg}${fix}`);
  }
  const link = res.headers.get('link');
  const m = link ? /^<([^>]+)>;\s*rel="next"/.exec(link) : null;
  return { json, next: m?.[1] };
}

/** Follows `Link` pages until `top` items (or all). */
async function listAll<T>(
  conn: ResolvedConn,
  path: string,
  key: string,
  o: AcrOptions,
): Promise<T[]> {
  const top = o.top === undefined ? undefined : positive('--top', o.top);
  const q = new URLSearchParams({ n: String(Math.min(top ?? 100, 100)) });
  if (o.orderby) q.set('orderby', orderby(o.orderby));
  const out: T[] = [];
  let next: string | undefined = `${path}?${q.toString()}`;
  while (next && (top === undefined || out.length < top)) {
    const page = await request(conn, 'GET', next);
    out.push(...((page.json as Record<string, T[]>)[key] ?? []));
    next = page.next;
  }
  return top === undefined ? out : out.slice(0, top);
}

function positive(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new AcrCliError(`${flag} ${v}: a positive number`);
  return Number(v);
}

function orderby(v: string): string {
  if (v === 'time_asc' || v === 'timeasc') return 'timeasc';
  if (v === 'time_desc' || v === 'timedesc') return 'timedesc';
  throw new AcrCliError(`--orderby ${v}: use time_asc or time_desc`);
}

function bool(flag: string, v: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new AcrCliError(`${flag} ${v}: use true or false`);
}

/** Splits `REPO:TAG` or `REPO@DIGEST` (a bare `REPO` means `REPO:latest`, as az does). */
export function parseImage(image: string): { repository: string; tag?: string; digest?: string } {
  const at = image.indexOf('@');
  if (at >= 0) return { repository: image.slice(0, at), digest: image.slice(at + 1) };
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/'))
    return { repository: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { repository: image, tag: 'latest' };
}

const enc = (repository: string) => repository; // names need no encoding (ADR 0009)
const ref = (i: { tag?: string; digest?: string }) =>
  i.digest ? `_manifests/${i.digest}` : `_tags/${encodeURIComponent(i.tag!)}`;

const TAG_COLUMNS: Column[] = [
  ['NAME', (t) => t.name],
  ['DIGEST', (t) => t.digest],
  ['LAST UPDATE', (t) => t.lastUpdateTime],
  ['LAST PULL', (t) => t.lastPulledTime ?? ''],
  ['WRITE', (t) => (t.changeableAttributes as Record<string, boolean>).writeEnabled],
  ['DELETE', (t) => (t.changeableAttributes as Record<string, boolean>).deleteEnabled],
];
const MANIFEST_COLUMNS: Column[] = [
  ['DIGEST', (m) => m.digest],
  ['TAGS', (m) => m.tags],
  ['PLATFORM', (m) => (typeof m.os === 'string' ? `${m.os}/${m.architecture as string}` : '')],
  ['SIZE', (m) => m.imageSize],
  ['LAST UPDATE', (m) => m.lastUpdateTime],
  ['REFERRERS', (m) => m.referrers],
];

function print(v: unknown, o: AcrOptions, columns?: Column[]): void {
  process.stdout.write(`${render(v, outputFormat(o.output), columns)}\n`);
}

function repositoryOf(o: AcrOptions, args: string[]): string {
  const r = o.repository ?? args[0];
  if (!r) throw new AcrCliError('name the repository: --repository REPO');
  return r;
}

function flagsBody(o: AcrOptions): Record<string, boolean> {
  const body: Record<string, boolean> = {};
  if (o.deleteEnabled !== undefined) body.deleteEnabled = bool('--delete-enabled', o.deleteEnabled);
  if (o.writeEnabled !== undefined) body.writeEnabled = bool('--write-enabled', o.writeEnabled);
  if (o.readEnabled !== undefined) body.readEnabled = bool('--read-enabled', o.readEnabled);
  if (o.listEnabled !== undefined) body.listEnabled = bool('--list-enabled', o.listEnabled);
  return body;
}

type Run = (conn: ResolvedConn, o: AcrOptions, args: string[]) => Promise<void>;

function command(parent: Command, name: string, description: string): Command {
  return parent
    .command(name)
    .description(description)
    .option('--url <url>', 'a node or the gateway (env MERIDIAN_URL, or meridian login)')
    .option('-u, --user <name>', 'identity (env MERIDIAN_USERNAME, or meridian login)')
    .option('-p, --password <password>', 'its password (env MERIDIAN_PASSWORD, or meridian login)')
    .option('-o, --output <format>', 'table (default), json, yaml or tsv');
}

function act(c: Command, run: Run): void {
  c.action(async (...a: unknown[]) => {
    const cmd = a[a.length - 1] as Command;
    const o = cmd.opts<AcrOptions>();
    outputFormat(o.output);
    await run(resolveConn(o), o, cmd.args);
  });
}

const listing = (c: Command) =>
  c
    .option('--top <n>', 'at most this many items')
    .option('--orderby <order>', 'time_asc or time_desc (default: by name)')
    .option('--detail', 'every attribute, not only the names');

const flags = (c: Command) =>
  c
    .option('--delete-enabled <bool>', 'true|false')
    .option('--write-enabled <bool>', 'true|false (false also forbids deleting)')
    .option('--read-enabled <bool>', 'true|false')
    .option('--list-enabled <bool>', 'true|false');

function child(program: Command, name: string, description: string): Command {
  return (
    program.commands.find((c) => c.name() === name) ??
    program.command(name).description(description)
  );
}

export function registerAcrCommands(program: Command): void {
  const repo = child(program, 'repository', 'repositories, tags and their locks');
  const manifest = child(program, 'manifest', 'manifests and their metadata');

  act(
    command(repo, 'list', 'the repositories (az acr repository list)').option(
      '--top <n>',
      'at most this many',
    ),
    async (conn, o) => {
      print(await listAll<string>(conn, '/acr/v1/_catalog', 'repositories', o), o);
    },
  );
  act(
    listing(
      command(repo, 'show-tags', "a repository's tags (az acr repository show-tags)")
        .argument('[repository]')
        .option('--repository <name>', 'the repository'),
    ),
    async (conn, o, args) => {
      const r = repositoryOf(o, args);
      const tags = await listAll<Record<string, unknown>>(
        conn,
        `/acr/v1/${enc(r)}/_tags`,
        'tags',
        o,
      );
      if (o.detail) print(tags, o, TAG_COLUMNS);
      else
        print(
          tags.map((t) => t.name),
          o,
        );
    },
  );
  const showManifests: Run = async (conn, o, args) => {
    const r = o.name ?? repositoryOf(o, args);
    const list = await listAll<Record<string, unknown>>(
      conn,
      `/acr/v1/${enc(r)}/_manifests`,
      'manifests',
      o,
    );
    print(list, o, MANIFEST_COLUMNS);
  };
  act(
    listing(
      command(repo, 'show-manifests', "a repository's manifests (az acr repository show-manifests)")
        .argument('[repository]')
        .option('--repository <name>', 'the repository'),
    ),
    showManifests,
  );
  act(
    command(
      repo,
      'untag',
      'remove a tag, keep the manifest (az acr repository untag)',
    ).requiredOption('--image <repo:tag>', 'the tag to remove'),
    async (conn, o) => {
      const i = parseImage(o.image!);
      if (!i.tag) throw new AcrCliError('--image REPO:TAG: untag takes a tag, not a digest');
      await request(
        conn,
        'DELETE',
        `/acr/v1/${enc(i.repository)}/_tags/${encodeURIComponent(i.tag)}`,
      );
      process.stderr.write(`untagged ${i.repository}:${i.tag}\n`);
    },
  );
  act(
    command(
      repo,
      'delete',
      'delete a repository, or a manifest and every tag on it (az acr repository delete)',
    )
      .option('--repository <name>', 'the whole repository')
      .option('--image <ref>', 'REPO:TAG or REPO@DIGEST: the manifest (and all its tags)')
      .option('-y, --yes', 'do not ask: this command never prompts, so it is required'),
    async (conn, o) => {
      if (!o.repository === !o.image)
        throw new AcrCliError(
          'name what to delete: --repository REPO or --image REPO:TAG|REPO@DIGEST',
        );
      if (o.repository) {
        if (!o.yes) throw new AcrCliError(`this deletes every image of ${o.repository}: add --yes`);
        const r = await request(conn, 'DELETE', `/acr/v1/${enc(o.repository)}`);
        print(r.json, o);
        return;
      }
      const i = parseImage(o.image!);
      const digest =
        i.digest ??
        (
          (await request(conn, 'GET', `/acr/v1/${enc(i.repository)}/${ref(i)}`)).json as {
            tag: { digest: string };
          }
        ).tag.digest;
      if (!o.yes)
        throw new AcrCliError(`this deletes manifest ${digest} and every tag on it: add --yes`);
      await request(conn, 'DELETE', `/acr/v1/${enc(i.repository)}/_manifests/${digest}`);
      process.stderr.write(`deleted ${i.repository}@${digest}\n`);
    },
  );

  act(
    listing(
      command(
        manifest,
        'list-metadata',
        'the manifests of a repository (az acr manifest list-metadata)',
      )
        .argument('[repository]')
        .option('-n, --name <repository>', 'the repository'),
    ),
    showManifests,
  );
  const showOne: Run = async (conn, o, args) => {
    const spec = o.name ?? args[0];
    if (!spec) throw new AcrCliError('name the manifest: --name REPO:TAG or REPO@DIGEST');
    const i = parseImage(spec);
    const body = flagsBody(o);
    const patch = Object.keys(body).length > 0;
    const path = `/acr/v1/${enc(i.repository)}/${i.digest ? `_manifests/${i.digest}` : `_manifests/${encodeURIComponent(i.tag!)}`}`;
    const r = await request(conn, patch ? 'PATCH' : 'GET', path, patch ? body : undefined);
    print((r.json as { manifest: unknown }).manifest, o);
  };
  act(
    command(manifest, 'show-metadata', "a manifest's metadata (az acr manifest show-metadata)")
      .argument('[ref]')
      .option('-n, --name <ref>', 'REPO:TAG or REPO@DIGEST'),
    showOne,
  );
  act(
    flags(
      command(
        manifest,
        'update-metadata',
        "change a manifest's lock (az acr manifest update-metadata)",
      )
        .argument('[ref]')
        .option('-n, --name <ref>', 'REPO:TAG or REPO@DIGEST'),
    ),
    async (conn, o, args) => {
      if (Object.keys(flagsBody(o)).length === 0)
        throw new AcrCliError(
          'nothing to change: give --write-enabled, --delete-enabled, --read-enabled or --list-enabled',
        );
      await showOne(conn, o, args);
    },
  );
}
