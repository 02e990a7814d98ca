/**
 * The identity and access commands — `admin-user`, `user`, `role`, `scope-map`, `token`,
 * `settings`, `audit` — as clients of a node's admin API (`/meridian/v1/admin`), so they work
 * against any region, through the gateway, and leave the same audit trail as any other change.
 * Connection: `--url`/`MERIDIAN_URL` (default http://127.0.0.1:5000), `--user`/`MERIDIAN_USERNAME`
 * (default `owner`), `--password`/`MERIDIAN_PASSWORD` or `--password-stdin`.
 */
import type { Command } from 'commander';
import pino from 'pino';
import { resetOwner } from '@meridian/auth';
import { openStore } from '@meridian/storage';
import { AdminApiError, call, sub } from './admin-client';
import { storeOptions } from './cluster';
import { loadConfig, NodeConfigSchema } from './config';

export { AdminApiError } from './admin-client';

/** `30d`, `12h`, `90m` from now, or an ISO time. */
export function parseExpiry(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const m = /^(\d+)([dhm])$/.exec(v);
  if (m) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
    return new Date(Date.now() + Number(m[1]) * unit).toISOString();
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new AdminApiError(`invalid expiry ${v}: 30d, 12h, 90m or an ISO time`);
  return new Date(t).toISOString();
}

/** `team-a/*:content/read,content/write` → a scope map rule. */
export function parseRule(v: string): { repository: string; actions: string[] } {
  const i = v.lastIndexOf(':');
  if (i <= 0) throw new AdminApiError(`invalid --action ${v}: REPOSITORY-PATTERN:ACTION[,ACTION]`);
  return {
    repository: v.slice(0, i),
    actions: v
      .slice(i + 1)
      .split(',')
      .filter(Boolean),
  };
}

/** `AcrPush` or `AcrPush:team-a/*` → a role assignment. */
function parseRole(v: string): { role: string; scope: string } {
  const i = v.indexOf(':');
  return i < 0 ? { role: v, scope: '*' } : { role: v.slice(0, i), scope: v.slice(i + 1) };
}

const collect = (v: string, prev: string[]) => [...prev, v];
const enc = encodeURIComponent;

const id = (c: Command) => c;

export function registerAdminCommands(program: Command): void {
  program
    .command('admin')
    .description('offline recovery, with access to the storage itself (no login)')
    .command('reset-owner')
    .description(
      'give the owner user a new password (MERIDIAN_OWNER_PASSWORD, else generated and printed), enable it and make it an Owner again',
    )
    .option('--storage <dir|s3-url>', 'the primary region’s storage')
    .option('--config <file>', 'or: the cluster configuration (its primary region’s storage)')
    .action(async (o: { storage?: string; config?: string }) => {
      process.stdout.write(await resetOwnerCommand(o));
    });

  const admin = program
    .command('admin-user')
    .description('the admin user (username = the registry name, two passwords; off by default)');
  sub(admin, 'show', 'show whether it is enabled and its passwords’ dates', id, (_a, o) =>
    call(o, 'GET', '/meridian/v1/admin/admin-user'),
  );
  sub(
    admin,
    'enable',
    'enable it (the first time, both passwords are generated and shown)',
    id,
    (_a, o) => call(o, 'POST', '/meridian/v1/admin/admin-user/enable'),
  );
  sub(admin, 'disable', 'disable it', id, (_a, o) =>
    call(o, 'POST', '/meridian/v1/admin/admin-user/disable'),
  );
  sub(
    admin,
    'password <password1|password2>',
    'regenerate one password (shown once)',
    id,
    ([slot], o) => call(o, 'POST', `/meridian/v1/admin/admin-user/passwords/${enc(slot!)}`),
  );

  const user = program.command('user').description('users and service identities');
  sub<{ service?: boolean; role: string[]; newPassword?: string }>(
    user,
    'create <name>',
    'create a user (or --service identity); without --new-password one is generated and shown once',
    (c) =>
      c
        .option('--service', 'a service identity (CI, deployments) rather than a person')
        .option(
          '--role <role[:pattern]>',
          'assign a role, e.g. AcrPush:team-a/* (repeatable)',
          collect,
          [],
        )
        .option('--new-password <password>', 'its password (default: generated)'),
    ([name], o) =>
      call(o, 'POST', '/meridian/v1/admin/identities', {
        kind: o.service ? 'service' : 'user',
        name,
        password: o.newPassword,
        roles: o.role.map(parseRole),
      }),
  );
  sub(user, 'list', 'list identities', id, (_a, o) =>
    call(o, 'GET', '/meridian/v1/admin/identities'),
  );
  sub(user, 'show <name>', 'show one identity', id, ([n], o) =>
    call(o, 'GET', `/meridian/v1/admin/identities/${enc(n!)}`),
  );
  sub(user, 'delete <name>', 'delete an identity', id, ([n], o) =>
    call(o, 'DELETE', `/meridian/v1/admin/identities/${enc(n!)}`),
  );
  for (const state of ['enable', 'disable'])
    sub(user, `${state} <name>`, `${state} an identity`, id, ([n], o) =>
      call(o, 'POST', `/meridian/v1/admin/identities/${enc(n!)}/${state}`),
    );
  sub<{ slot: string; newPassword?: string; expiry?: string }>(
    user,
    'password <name>',
    'set or generate a password (generated ones are shown once)',
    (c) =>
      c
        .option('--slot <password1|password2>', 'which of the two passwords', 'password1')
        .option('--new-password <password>', 'the new password (default: generated)')
        .option('--expiry <when>', '30d, 12h or an ISO time'),
    ([n], o) =>
      call(o, 'POST', `/meridian/v1/admin/identities/${enc(n!)}/passwords/${enc(o.slot)}`, {
        password: o.newPassword,
        expiresAt: parseExpiry(o.expiry),
      }),
  );

  const role = program
    .command('role')
    .description(
      'role assignments: AcrPull, AcrPush, AcrDelete, Reader, Owner on * or a repository pattern',
    );
  const roleOpts = (c: Command) =>
    c
      .requiredOption('--identity <name>', 'user or service identity')
      .requiredOption('--role <role>', 'AcrPull, AcrPush, AcrDelete, Reader or Owner')
      .option('--scope <pattern>', 'the registry (*) or a repository pattern like team-a/*', '*');
  type RoleOpts = { identity: string; role: string; scope: string };
  sub<RoleOpts>(role, 'assign', 'assign a role', roleOpts, (_a, o) =>
    call(o, 'POST', `/meridian/v1/admin/identities/${enc(o.identity)}/roles`, {
      role: o.role,
      scope: o.scope,
    }),
  );
  sub<RoleOpts>(role, 'remove', 'remove a role assignment', roleOpts, (_a, o) =>
    call(
      o,
      'DELETE',
      `/meridian/v1/admin/identities/${enc(o.identity)}/roles?role=${enc(o.role)}&scope=${enc(o.scope)}`,
    ),
  );
  sub<{ identity?: string }>(
    role,
    'list',
    'list role assignments',
    (c) => c.option('--identity <name>', 'only this identity'),
    async (_a, o) => {
      const { identities } = (await call(o, 'GET', '/meridian/v1/admin/identities')) as {
        identities: { name: string; kind: string; roles: unknown[] }[];
      };
      return identities
        .filter((i) => !o.identity || i.name === o.identity)
        .map((i) => ({ identity: i.name, kind: i.kind, roles: i.roles }));
    },
  );

  const scopeMap = program
    .command('scope-map')
    .description(
      'scope maps: repository patterns → content/read, content/write, content/delete, metadata/read, metadata/write',
    );
  type MapOpts = { action: string[]; description?: string };
  const mapOpts = (c: Command) =>
    c
      .option(
        '--action <pattern:actions>',
        'e.g. team-a/*:content/read,content/write (repeatable)',
        collect,
        [],
      )
      .option('--description <text>', 'what it is for');
  sub<MapOpts>(scopeMap, 'create <name>', 'create a scope map', mapOpts, ([n], o) =>
    call(o, 'POST', '/meridian/v1/admin/scope-maps', {
      name: n,
      description: o.description,
      rules: o.action.map(parseRule),
    }),
  );
  sub<MapOpts>(
    scopeMap,
    'update <name>',
    'replace its rules and/or description',
    mapOpts,
    ([n], o) =>
      call(o, 'PATCH', `/meridian/v1/admin/scope-maps/${enc(n!)}`, {
        description: o.description,
        rules: o.action.length > 0 ? o.action.map(parseRule) : undefined,
      }),
  );
  sub(scopeMap, 'list', 'list scope maps (built-in ones included)', id, (_a, o) =>
    call(o, 'GET', '/meridian/v1/admin/scope-maps'),
  );
  sub(scopeMap, 'show <name>', 'show one scope map', id, ([n], o) =>
    call(o, 'GET', `/meridian/v1/admin/scope-maps/${enc(n!)}`),
  );
  sub(scopeMap, 'delete <name>', 'delete a scope map no token uses', id, ([n], o) =>
    call(o, 'DELETE', `/meridian/v1/admin/scope-maps/${enc(n!)}`),
  );

  const token = program
    .command('token')
    .description('repository-scoped tokens (a login bound to a scope map)');
  sub<{ scopeMap: string; expiry?: string; disabled?: boolean; passwords: boolean }>(
    token,
    'create <name>',
    'create a token; both passwords are generated and shown once',
    (c) =>
      c
        .requiredOption('--scope-map <name>', 'its scope map (e.g. _repositories_pull)')
        .option('--expiry <when>', 'passwords expire: 30d, 12h or an ISO time')
        .option('--disabled', 'create it disabled')
        .option('--no-passwords', 'generate no password now'),
    ([n], o) =>
      call(o, 'POST', '/meridian/v1/admin/tokens', {
        name: n,
        scopeMap: o.scopeMap,
        enabled: !o.disabled,
        expiresAt: parseExpiry(o.expiry),
        passwords: o.passwords,
      }),
  );
  sub(token, 'list', 'list tokens', id, (_a, o) => call(o, 'GET', '/meridian/v1/admin/tokens'));
  sub(token, 'show <name>', 'show one token', id, ([n], o) =>
    call(o, 'GET', `/meridian/v1/admin/tokens/${enc(n!)}`),
  );
  sub<{ scopeMap: string }>(
    token,
    'update <name>',
    'bind it to another scope map',
    (c) => c.requiredOption('--scope-map <name>', 'the scope map'),
    ([n], o) => call(o, 'PATCH', `/meridian/v1/admin/tokens/${enc(n!)}`, { scopeMap: o.scopeMap }),
  );
  for (const state of ['enable', 'disable'])
    sub(token, `${state} <name>`, `${state} a token (every node within seconds)`, id, ([n], o) =>
      call(o, 'POST', `/meridian/v1/admin/tokens/${enc(n!)}/${state}`),
    );
  sub(token, 'delete <name>', 'delete a token', id, ([n], o) =>
    call(o, 'DELETE', `/meridian/v1/admin/tokens/${enc(n!)}`),
  );
  const credential = token.command('credential').description('a token’s two passwords');
  type SlotOpts = { password1?: boolean; password2?: boolean; expiry?: string };
  const slotOpts = (c: Command) =>
    c
      .option('--password1', 'the first password (default)')
      .option('--password2', 'the second password');
  const slotOf = (o: SlotOpts) => (o.password2 ? 'password2' : 'password1');
  sub<SlotOpts>(
    credential,
    'generate <name>',
    'generate (replace) one password, shown once',
    (c) => slotOpts(c).option('--expiry <when>', '30d, 12h or an ISO time'),
    ([n], o) =>
      call(o, 'POST', `/meridian/v1/admin/tokens/${enc(n!)}/passwords/${slotOf(o)}`, {
        expiresAt: parseExpiry(o.expiry),
      }),
  );
  sub<SlotOpts>(credential, 'delete <name>', 'delete one password', slotOpts, ([n], o) =>
    call(o, 'DELETE', `/meridian/v1/admin/tokens/${enc(n!)}/passwords/${slotOf(o)}`),
  );

  const settings = program.command('settings').description('registry-wide settings');
  sub(settings, 'show', 'show them', id, (_a, o) => call(o, 'GET', '/meridian/v1/admin/settings'));
  sub(
    settings,
    'anonymous-pull <on|off>',
    'let unauthenticated clients pull (off by default)',
    id,
    ([v], o) => {
      if (v !== 'on' && v !== 'off') throw new AdminApiError('anonymous-pull takes on or off');
      return call(o, 'PATCH', '/meridian/v1/admin/settings', { anonymousPull: v === 'on' });
    },
  );

  sub<{
    since?: string;
    until?: string;
    actor?: string;
    action?: string;
    outcome?: string;
    limit: string;
  }>(
    program,
    'audit',
    'query the audit log (logins, administrative and content changes), newest first',
    (c) =>
      c
        .option('--since <time>', 'ISO time or 30d/12h/90m ago (default 7 days)')
        .option('--until <time>', 'ISO time')
        .option('--actor <name>', 'who')
        .option('--action <action>', 'login, identity, token.disable, ...')
        .option('--outcome <outcome>', 'success, failure or throttled')
        .option('--limit <n>', 'at most this many', '100'),
    async (_a, o) => {
      const ago = o.since && /^\d+[dhm]$/.test(o.since) ? parseAgo(o.since) : o.since;
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries({
        since: ago,
        until: o.until,
        actor: o.actor,
        action: o.action,
        outcome: o.outcome,
        limit: o.limit,
      }))
        if (v) q.set(k, v);
      return call(o, 'GET', `/meridian/v1/admin/audit?${q.toString()}`);
    },
  );
}

/**
 * `meridian admin reset-owner`: recovery without a login, for whoever can reach the primary
 * region's storage. The `owner` user gets one new password (MERIDIAN_OWNER_PASSWORD, else a
 * generated one, printed), is enabled and is an Owner of the registry again; running nodes
 * pick it up within their poll interval (`auth.pollIntervalMs`).
 */
export async function resetOwnerCommand(o: { storage?: string; config?: string }): Promise<string> {
  const c = loadConfig(NodeConfigSchema, {
    file: o.config,
    checkRegion: false,
    overrides: o.storage ? { storage: o.storage } : {},
  });
  const primary = c.regions.find((r) => r.role === 'primary');
  const location = o.storage ?? primary?.storage ?? c.storage;
  if (!location)
    throw new AdminApiError(
      'reset-owner needs the primary region’s storage: --storage DIR|s3-url, or --config with regions',
    );
  const log = pino({ level: 'warn' }, pino.destination(2));
  const store = await openStore(location, storeOptions(c));
  try {
    const given = process.env.MERIDIAN_OWNER_PASSWORD || undefined;
    const r = await resetOwner({
      store,
      region: o.storage ? c.region : (primary?.name ?? c.region),
      registryName: c.auth.registryName,
      password: given,
      log,
    });
    return r.password
      ? `owner: enabled, Owner of the registry, new password ${r.password}\n` +
          'it is shown only this once; running nodes accept it within seconds\n'
      : 'owner: enabled, Owner of the registry, password set from MERIDIAN_OWNER_PASSWORD\n';
  } finally {
    await store.close();
  }
}

function parseAgo(v: string): string {
  const future = parseExpiry(v)!;
  return new Date(2 * Date.now() - Date.parse(future)).toISOString();
}
