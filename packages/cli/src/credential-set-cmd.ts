/**
 * `meridian credential-set create|update|show|list|delete` — clients of a node's admin API
 * (`/meridian/v1/admin/credential-sets`). `--username`/`--password` are the upstream
 * registry's; the Owner's password comes from MERIDIAN_PASSWORD or `--password-stdin`, as for
 * `meridian import`.
 */
import type { Command } from 'commander';
import { AdminApiError, call, print, type Conn } from './admin-client';

const BASE = '/meridian/v1/admin/credential-sets';
const enc = encodeURIComponent;

interface SetOpts {
  url?: string;
  user?: string;
  passwordStdin?: boolean;
  loginServer?: string;
  username?: string;
  password?: string;
}

function conn(o: SetOpts): Conn {
  return { url: o.url, user: o.user, passwordStdin: o.passwordStdin };
}

function options(c: Command, upstream: boolean): Command {
  if (upstream)
    c.option('--login-server <host>', 'the registry these credentials are for (docker.io)')
      .option('--username <name>', "the upstream registry's username")
      .option('--password <password>', "the upstream registry's password or token");
  return c
    .option(
      '--url <url>',
      'a node or the gateway (env MERIDIAN_URL; default http://127.0.0.1:5000)',
    )
    .option('--user <name>', 'an Owner identity (env MERIDIAN_USERNAME; default owner)')
    .option('--password-stdin', "read the Owner's password from standard input");
}

/** The body of create/update: only the options given. */
export function credentialSetBody(o: SetOpts): Record<string, unknown> {
  if ((o.username === undefined) !== (o.password === undefined))
    throw new AdminApiError('--username and --password go together');
  return {
    ...(o.loginServer !== undefined && { loginServer: o.loginServer }),
    ...(o.username !== undefined && { username: o.username, password: o.password }),
  };
}

export function registerCredentialSetCommands(program: Command): void {
  const cs = program
    .command('credential-set')
    .description(
      'credentials for upstream registries (imports, cache rules), encrypted at rest; never shown',
    );
  const action =
    (fn: (name: string | undefined, o: SetOpts) => Promise<unknown>) =>
    async (...a: unknown[]) => {
      const cmd = a[a.length - 1] as Command;
      print(await fn(cmd.args[0], cmd.opts<SetOpts>()));
    };
  options(cs.command('create <name>').description('create a credential set'), true).action(
    action((name, o) => call(conn(o), 'POST', BASE, { name, ...credentialSetBody(o) })),
  );
  options(
    cs.command('update <name>').description('replace the username and password, or the server'),
    true,
  ).action(
    action((name, o) => call(conn(o), 'PATCH', `${BASE}/${enc(name!)}`, credentialSetBody(o))),
  );
  options(cs.command('show <name>').description('show a credential set (no secret)'), false).action(
    action((name, o) => call(conn(o), 'GET', `${BASE}/${enc(name!)}`)),
  );
  options(cs.command('list').description('list the credential sets'), false).action(
    action((_n, o) => call(conn(o), 'GET', BASE)),
  );
  options(cs.command('delete <name>').description('delete a credential set'), false).action(
    action((name, o) => call(conn(o), 'DELETE', `${BASE}/${enc(name!)}`)),
  );
}
