import { createRedis, describeRedis, redisOptions } from './redis-connection';

describe('Redis connections', () => {
  it('opens one server from a URL, as a string or { url }', () => {
    for (const c of ['redis://:pw@127.0.0.1:6390/2', { url: 'redis://:pw@127.0.0.1:6390/2' }]) {
      const r = createRedis(c, { lazyConnect: true });
      expect(r.options).toMatchObject({ host: '127.0.0.1', port: 6390, password: 'pw', db: 2 });
      expect(r.options.sentinels).toBeFalsy();
      expect(r.options.lazyConnect).toBe(true);
      r.disconnect();
    }
  });

  it('finds the master through Sentinels, with credentials for both, and watches for failovers', () => {
    const r = createRedis(
      {
        sentinels: ['10.0.0.1:26379', '[fd00::2]:26380', 'sentinel-3'],
        name: 'meridian',
        password: 'master-pw',
        sentinelPassword: 'sentinel-pw',
      },
      { lazyConnect: true, maxRetriesPerRequest: null },
    );
    expect(r.options).toMatchObject({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'fd00::2', port: 26380 },
        { host: 'sentinel-3', port: 26379 },
      ],
      name: 'meridian',
      password: 'master-pw',
      sentinelPassword: 'sentinel-pw',
      failoverDetector: true,
      maxRetriesPerRequest: null,
    });
    expect(r.options.enableTLSForSentinelMode).toBe(false);
    // BullMQ's connections are duplicates: they keep the Sentinel settings.
    const dup = r.duplicate({ maxRetriesPerRequest: null });
    expect(dup.options.sentinels).toEqual(r.options.sentinels);
    r.disconnect();
    dup.disconnect();
  });

  it('reconnects on READONLY (a demoted master), and on nothing else', () => {
    const reconnect = redisOptions({ sentinels: ['a:1'] }).reconnectOnError!;
    expect(reconnect(new Error("READONLY You can't write against a read only replica."))).toBe(2);
    expect(reconnect(new Error('ERR unknown command'))).toBe(false);
  });

  it('uses TLS for Redis, and for the Sentinels only when asked', () => {
    const o = redisOptions({
      sentinels: ['a:1'],
      tls: { servername: 'redis.internal', rejectUnauthorized: false },
      sentinelTls: true,
    });
    expect(o.tls).toMatchObject({ servername: 'redis.internal', rejectUnauthorized: false });
    expect(o.enableTLSForSentinelMode).toBe(true);
    expect(o.sentinelTLS).toBe(o.tls);
    expect(redisOptions({ sentinels: ['a:1'], tls: {} }).sentinelTLS).toBeUndefined();
  });

  it('refuses url and sentinels together', () => {
    expect(() => createRedis({ url: 'redis://x', sentinels: ['a:1'] })).toThrow(
      /either url or sentinels/,
    );
  });

  it('describes a connection without its password', () => {
    expect(describeRedis('redis://:secret@h:1/0')).not.toContain('secret');
    expect(describeRedis({ sentinels: ['a:1', 'b:2'], name: 'm', password: 'secret' })).toBe(
      'sentinel m via a:1,b:2',
    );
  });
});
