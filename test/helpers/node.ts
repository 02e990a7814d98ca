import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry, startNodeServer, type RegistryOptions } from '@meridian/registry';
import { openStore, type ObjectStore } from '@meridian/storage';
import { testLogger } from './log-scan';
import { newTestBucket, testS3 } from './s3-env';

export type StorageKind = 'fs' | 's3';

export interface TestNode {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, for clients that want a host. */
  host: string;
  registry: Registry;
  store: ObjectStore;
  /** The storage location (directory or s3:// URL), to restart a node on the same data. */
  storage: string;
  close(): Promise<void>;
}

/** Where a fresh test registry's data lives: a temp directory or a new bucket on the test S3. */
export async function newStorage(
  kind: StorageKind,
): Promise<{ location: string; cleanup(): void }> {
  if (kind === 'fs') {
    const dir = mkdtempSync(join(tmpdir(), 'meridian-test-'));
    return { location: dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
  const s3 = testS3();
  if (!s3)
    throw new Error('S3 tests need the Ceph RGW started by the jest global setup (apt: radosgw)');
  const bucket = await newTestBucket();
  return {
    location: `s3://${bucket}?endpoint=${encodeURIComponent(s3.endpoint)}&region=${s3.region}`,
    cleanup: () => {},
  };
}

/**
 * Starts a registry node on a free loopback port over the given storage (a fresh one by default).
 * Logs are silent unless MERIDIAN_TEST_LOG is set.
 */
export async function startTestNode(
  opts: {
    storage?: StorageKind;
    location?: string;
    /** The server's `bodyIdleTimeoutMs` (default: the server's). */
    bodyIdleTimeoutMs?: number;
  } & Partial<Omit<RegistryOptions, 'store'>> = {},
): Promise<TestNode> {
  const fresh = opts.location ? undefined : await newStorage(opts.storage ?? 'fs');
  const location = opts.location ?? fresh!.location;
  const store = await openStore(location, { partSize: 5 * 1024 * 1024 });
  const registry = new Registry({
    store,
    cache: opts.cache,
    uploads: opts.uploads,
    events: opts.events,
  });
  const log = testLogger();
  const node = await startNodeServer({
    registry,
    log,
    listen: '127.0.0.1:0',
    purgeIntervalMs: 0,
    ...(opts.bodyIdleTimeoutMs !== undefined && { bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs }),
  });
  return {
    url: node.url,
    host: node.url.replace(/^http:\/\//, ''),
    registry,
    store,
    storage: location,
    close: async () => {
      await node.close();
      await store.close();
    },
  };
}
