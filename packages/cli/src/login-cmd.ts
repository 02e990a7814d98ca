import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_URL, removeLogin, saveLogin } from './login';

/**
 * `meridian login [URL]`: checks the credentials against the node's `/v2/` and saves them (with
 * the URL) for every later API command; `meridian logout` forgets them.
 */
export function registerLoginCommands(program: Command): void {
  program
    .command('login')
    .argument('[url]', `a node or the gateway (default ${DEFAULT_URL})`)
    .description('check a login against a node or the gateway and save it for later commands')
    .option('-u, --user <name>', 'identity (default owner)')
    .option('-p, --password <password>', 'its password')
    .option('--password-stdin', 'read the password from standard input')
    .action(
      async (
        url: string | undefined,
        o: { user?: string; password?: string; passwordStdin?: boolean },
      ) => {
        const base = (url ?? process.env.MERIDIAN_URL ?? DEFAULT_URL).replace(/\/+$/, '');
        const username = o.user ?? process.env.MERIDIAN_USERNAME ?? 'owner';
        const password = o.passwordStdin
          ? readFileSync(0, 'utf8').replace(/\r?\n$/, '')
          : (o.password ?? process.env.MERIDIAN_PASSWORD);
        if (!password)
          throw new Error('a password is needed: -p, --password-stdin or MERIDIAN_PASSWORD');
        let res: Response;
        try {
          res = await fetch(`${base}/v2/`, {
            headers: {
              Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
            },
          });
        } catch (err) {
          throw new Error(`cannot reach ${base}: ${(err as Error).message}`);
        }
        await res.body?.cancel();
        if (res.status === 401 || res.status === 403)
          throw new Error(
            `${base} refused ${username}'s login (${res.status}): check the user and password`,
          );
        if (!res.ok) throw new Error(`${base}/v2/ answered ${res.status}: is it a Meridian node?`);
        const file = saveLogin({ url: base, username, password });
        process.stdout.write(`Login succeeded: ${username} at ${base} (saved in ${file})\n`);
      },
    );
  program
    .command('logout')
    .description('forget the saved login')
    .action(() => {
      process.stdout.write(removeLogin() ? 'Removed the saved login\n' : 'Not logged in\n');
    });
}
