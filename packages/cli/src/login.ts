/**
 * Where the CLI's API commands send their requests: `--url`/`--user`/`--password` first, then
 * `MERIDIAN_URL`/`MERIDIAN_USERNAME`/`MERIDIAN_PASSWORD`, then the login `meridian login` saved,
 * then `http://127.0.0.1:5000` as `owner`. The saved login is one JSON file, readable by its
 * owner only: `$MERIDIAN_CONFIG_DIR/login.json`, default `$XDG_CONFIG_HOME/meridian` or
 * `~/.config/meridian`.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_URL = 'http://127.0.0.1:5000';

export interface SavedLogin {
  url: string;
  username: string;
  password: string;
}

export interface ResolvedConn {
  url: string;
  user: string;
  password?: string;
  /** Where each part came from, for errors that name the fix. */
  from: 'flags' | 'environment' | 'saved login' | 'default';
}

export function configDir(): string {
  const env = process.env;
  if (env.MERIDIAN_CONFIG_DIR) return env.MERIDIAN_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'meridian');
}

function loginFile(): string {
  return join(configDir(), 'login.json');
}

export function readLogin(): SavedLogin | undefined {
  try {
    const v = JSON.parse(readFileSync(loginFile(), 'utf8')) as Partial<SavedLogin>;
    if (
      typeof v.url === 'string' &&
      typeof v.username === 'string' &&
      typeof v.password === 'string'
    )
      return { url: v.url, username: v.username, password: v.password };
  } catch {
    // no saved login
  }
  return undefined;
}

export function saveLogin(l: SavedLogin): string {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = loginFile();
  writeFileSync(file, `${JSON.stringify(l, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

export function removeLogin(): boolean {
  const file = loginFile();
  try {
    readFileSync(file);
  } catch {
    return false;
  }
  rmSync(file, { force: true });
  return true;
}

/** The connection a command uses (see the module comment for the order). */
export function resolveConn(c: { url?: string; user?: string; password?: string }): ResolvedConn {
  const env = process.env;
  if (c.url || c.password) {
    const url = trim(c.url ?? env.MERIDIAN_URL ?? readLogin()?.url ?? DEFAULT_URL);
    // The saved password goes only to the URL it was saved for, never to another host.
    const saved = readLogin();
    const same = saved && trim(saved.url) === url && c.password === undefined;
    return {
      url,
      user: c.user ?? env.MERIDIAN_USERNAME ?? (same ? saved.username : 'owner'),
      password: c.password ?? env.MERIDIAN_PASSWORD ?? (same ? saved.password : undefined),
      from: 'flags',
    };
  }
  if (env.MERIDIAN_URL || env.MERIDIAN_PASSWORD)
    return {
      url: trim(env.MERIDIAN_URL ?? readLogin()?.url ?? DEFAULT_URL),
      user: c.user ?? env.MERIDIAN_USERNAME ?? 'owner',
      password: env.MERIDIAN_PASSWORD,
      from: 'environment',
    };
  const saved = readLogin();
  if (saved)
    return {
      url: trim(saved.url),
      user: c.user ?? saved.username,
      password: saved.password,
      from: 'saved login',
    };
  return { url: DEFAULT_URL, user: c.user ?? 'owner', from: 'default' };
}

const trim = (u: string) => u.replace(/\/+$/, '');
