import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { Redis, RedisOptions } from 'ioredis';
import { ioredis } from './ioredis-lazy';

/** TLS to Redis (and, with `sentinelTls`, to the Sentinels). */
export interface RedisTlsOptions {
  /** PEM file of the CA(s) to trust. Default: the system's. */
  ca?: string;
  /** PEM client certificate and key files, for servers that ask for one. */
  cert?: string;
  key?: string;
  /** The name to verify the server's certificate against. Default: the host connected to. */
  servername?: string;
  /** Refuse a certificate that does not verify. Default true. */
  rejectUnauthorized?: boolean;
}

/**
 * How to reach Redis: one server by URL (`redis://[user:password@]host:port[/db]`, `rediss://`
 * for TLS), or a master found through Redis Sentinel (`sentinels` + `name`).
 */
export interface RedisConnectionOptions {
  /** One server. Exclusive with `sentinels`. */
  url?: string;
  /** Sentinels to ask for the master, `host:port` each (any one that answers is enough). */
  sentinels?: string[];
  /** The master group the Sentinels monitor (`sentinel monitor <name> …`). Default `mymaster`. */
  name?: string;
  /** Redis ACL user and password (AUTH), for the master and replicas. */
  username?: string;
  password?: string;
  /** The Sentinels' own credentials, when they require AUTH. */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** Database number. Default 0. */
  db?: number;
  /** TLS to Redis. Default: off (on for `rediss://`). */
  tls?: RedisTlsOptions;
  /** Use `tls` for the connections to the Sentinels too. Default false. */
  sentinelTls?: boolean;
}

/** A URL string (shorthand for `{ url }`) or the options above. */
export type RedisConnection = string | RedisConnectionOptions;

const normalise = (c: RedisConnection): RedisConnectionOptions =>
  typeof c === 'string' ? { url: c } : c;

function tlsOptions(t: RedisTlsOptions): ConnectionOptions {
  const file = (f?: string) => (f === undefined ? undefined : readFileSync(f));
  return {
    ca: file(t.ca),
    cert: file(t.cert),
    key: file(t.key),
    servername: t.servername,
    rejectUnauthorized: t.rejectUnauthorized ?? true,
  };
}

function sentinelAddress(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const host = (i > 0 ? s.slice(0, i) : s).replace(/^\[(.*)\]$/, '$1');
  return { host, port: i > 0 ? Number(s.slice(i + 1)) : 26379 };
}

/**
 * ioredis options for a connection, without the URL (see `createRedis`). With Sentinels, a
 * client asks them for the master at every (re)connect, so after a failover it reconnects to
 * the new master; a `READONLY` reply (a demoted master still answering) makes it reconnect too.
 */
export function redisOptions(c: RedisConnection): RedisOptions {
  const o = normalise(c);
  const tls = o.tls ? tlsOptions(o.tls) : undefined;
  const common: RedisOptions = {
    username: o.username,
    password: o.password,
    db: o.db,
    tls,
    // Reconnect (and, with Sentinels, find the master again) instead of failing every write.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
  if (!o.sentinels?.length) return common;
  return {
    ...common,
    sentinels: o.sentinels.map(sentinelAddress),
    name: o.name ?? 'mymaster',
    sentinelUsername: o.sentinelUsername,
    sentinelPassword: o.sentinelPassword,
    enableTLSForSentinelMode: tls !== undefined,
    sentinelTLS: o.sentinelTls ? tls : undefined,
    // Watch the Sentinels' +switch-master, so a failover is noticed at once, not at the next
    // error on the old master's connection.
    failoverDetector: true,
  };
}

/** Drops keys whose value is undefined, so they do not override what a URL says. */
const defined = (o: RedisOptions): RedisOptions =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/**
 * The one way Meridian opens a Redis client (queues, BullMQ, caches, pub/sub, login throttle):
 * the connection's options, then the caller's (`maxRetriesPerRequest`, `lazyConnect`, …).
 * BullMQ's own connections are `duplicate()`s of such a client, so they follow failovers too.
 */
export function createRedis(c: RedisConnection, overrides: RedisOptions = {}): Redis {
  const o = normalise(c);
  const options = { ...defined(redisOptions(o)), ...overrides };
  if (o.url && o.sentinels?.length)
    throw new Error('redis: give either url or sentinels, not both');
  const { Redis } = ioredis();
  return o.url ? new Redis(o.url, options) : new Redis(options);
}

/** Where a connection points, for logs and messages: never a password. */
export function describeRedis(c: RedisConnection): string {
  const o = normalise(c);
  if (o.sentinels?.length) return `sentinel ${o.name ?? 'mymaster'} via ${o.sentinels.join(',')}`;
  try {
    const u = new URL(o.url ?? '');
    u.password = '';
    u.username = '';
    return u.toString();
  } catch {
    return 'redis (unparsable url)';
  }
}

/**
 * A BullMQ Worker's own connection: a `duplicate()` of `redis`, ended when the worker closes.
 * BullMQ never closes a connection it was given (it counts it as shared), so without this each
 * worker left a client behind that kept reconnecting — to a Sentinel set long gone, in tests —
 * and kept a stopping process alive.
 */
export function workerConnection(redis: Redis): {
  connection: Redis;
  endWith(worker: { once(event: 'closed', fn: () => void): unknown }): void;
} {
  const connection = redis.duplicate({ maxRetriesPerRequest: null });
  return {
    connection,
    endWith: (worker) => {
      worker.once('closed', () => connection.disconnect());
    },
  };
}
