/**
 * The CLI's client of a node's admin API (`/meridian/v1/admin`): connection options, one
 * request with basic auth and the server's error message, and subcommands that print the answer.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { apiRequest, ApiUnreachable, type ApiAnswer } from './api-request';
import { resolveConn } from './login';

/** How to reach and log in to a node's admin API (the common options of every command). */
export interface Conn {
  url?: string;
  user?: string;
  password?: string;
  passwordStdin?: boolean;
}

export class AdminApiError extends Error {}

/** One admin API request; the parsed JSON answer, or `AdminApiError` with the server's message. */
export async function call(
  c: Conn,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const conn = resolveConn(c);
  const { url, user } = conn;
  const password = c.passwordStdin ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : conn.password;
  if (!password)
    throw new AdminApiError(
      'a password is needed: meridian login, --password, --password-stdin or MERIDIAN_PASSWORD',
    );
  let answer: ApiAnswer;
  try {
    answer = await apiRequest({ url, user, password }, method, path, body);
  } catch (err) {
    if (!(err instanceof ApiUnreachable)) throw err;
    throw new AdminApiError(`cannot reach ${url}: ${err.message}`);
  }
  const { res, text } = answer;
  // A body that is not JSON is passed on as text.
  const json = answer.json === undefined && text ? text : answer.json;
  if (!res.ok) {
    const j = json as { error?: string; errors?: { message?: string }[] } | undefined;
    const msg = j?.error ?? j?.errors?.[0]?.message ?? text;
    throw new AdminApiError(`${res.status}: ${msg}`);
  }
  return json;
}

export const print = (v: unknown) => {
  if (v !== undefined) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
};

/** The connection options: `--url`, `--user`, `--password`, `--password-stdin`. */
export function connOptions(cmd: Command): Command {
  return cmd
    .option(
      '--url <url>',
      'a node or the gateway (env MERIDIAN_URL; default http://127.0.0.1:5000)',
    )
    .option('--user <name>', 'an Owner identity (env MERIDIAN_USERNAME; default owner)')
    .option('--password <password>', 'its password (env MERIDIAN_PASSWORD)')
    .option('--password-stdin', 'read the password from standard input');
}

/** Adds a subcommand with the connection options; `run` gets the positional args and options. */
export function sub<O extends object>(
  parent: Command,
  spec: string,
  description: string,
  configure: (c: Command) => Command,
  run: (args: string[], o: O & Conn) => Promise<unknown>,
): void {
  const c = connOptions(configure(parent.command(spec).description(description)));
  c.action(async (...a: unknown[]) => {
    const cmd = a[a.length - 1] as Command;
    const opts = cmd.opts<O & Conn>();
    print(await run(cmd.args, opts));
  });
}
