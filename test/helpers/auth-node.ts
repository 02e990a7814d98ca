import { Writable } from 'node:stream';
import pino from 'pino';
import { AuthService, type AuthServiceOptions } from '@meridian/auth';
import { Registry, startNodeServer } from '@meridian/registry';
import { openStore, type ObjectStore } from '@meridian/storage';
import { RegistryClient, type RequestOptions } from './http';
import { noteSecret, noteSecretsIn, testLogFile } from './log-scan';
import { newStorage, type StorageKind } from './node';

export const OWNER_PASSWORD = 'owner-password-for-tests';

/** A registry node with auth on, its AuthService, and every log line it wrote. */
export interface AuthNode {
  url: string;
  host: string;
  auth: AuthService;
  store: ObjectStore;
  registry: Registry;
  /** Every pino line the node (registry and auth) wrote, as JSON text. */
  logLines: string[];
  close(): Promise<void>;
}

/**
 * Starts a node with auth on over fresh storage; the owner's password is `OWNER_PASSWORD`.
 * Logs at `info` into `logLines` (so tests can check that no secret reaches them).
 */
export async function startAuthNode(
  opts: {
    storage?: StorageKind;
    /** The registry's soft delete (`RegistryOptions.softDeleteMs`). Default off. */
    softDeleteMs?: number;
  } & Partial<Omit<AuthServiceOptions, 'log' | 'source' | 'local'>> = {},
): Promise<AuthNode> {
  const { softDeleteMs, ...authOpts } = opts;
  const fresh = await newStorage(opts.storage ?? 'fs');
  const store = await openStore(fresh.location, { partSize: 5 * 1024 * 1024 });
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const file = testLogFile();
  const log = pino(
    { level: 'info' },
    file
      ? pino.multistream([
          { stream: sink },
          { stream: pino.destination({ dest: file, sync: true }) },
        ])
      : sink,
  );
  noteSecret(OWNER_PASSWORD);
  const auth = new AuthService({
    region: 'local',
    bootstrapOwner: true,
    ownerPassword: OWNER_PASSWORD,
    pollIntervalMs: 200,
    ...authOpts,
    source: store,
    local: store,
    log,
  });
  await auth.start();
  const registry = new Registry({ store, ...(softDeleteMs !== undefined && { softDeleteMs }) });
  const node = await startNodeServer({
    registry,
    log,
    listen: '127.0.0.1:0',
    purgeIntervalMs: 0,
    auth: { service: auth },
  });
  return {
    url: node.url,
    host: node.url.replace(/^http:\/\//, ''),
    auth,
    store,
    registry,
    logLines,
    close: async () => {
      await node.close();
      await auth.close();
      await store.close();
      fresh.cleanup();
    },
  };
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A raw client that sends one Authorization header with every request. */
export class AuthedClient extends RegistryClient {
  constructor(
    baseUrl: string,
    private readonly authorization: string | undefined,
  ) {
    super(baseUrl);
  }

  override request(method: string, path: string, opts: RequestOptions = {}) {
    const headers = { ...(this.authorization ? { Authorization: this.authorization } : {}) };
    return super.request(method, path, { ...opts, headers: { ...headers, ...opts.headers } });
  }
}

/** Gets a bearer token from the node's token endpoint (GET with Basic, like skopeo). */
export async function fetchToken(
  url: string,
  creds: { user: string; password: string } | undefined,
  scopes: string[],
  service = 'meridian',
): Promise<{ status: number; token?: string; body: Record<string, unknown> }> {
  const q = new URLSearchParams({ service });
  for (const s of scopes) q.append('scope', s);
  const res = await fetch(`${url}/oauth2/token?${q.toString()}`, {
    headers: creds ? { Authorization: basic(creds.user, creds.password) } : {},
  });
  const body = (await res.json()) as Record<string, unknown>;
  noteSecretsIn(body);
  return { status: res.status, token: body.token as string | undefined, body };
}
