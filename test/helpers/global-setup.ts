import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { s3Available, startCeph, type Ceph } from './ceph';

/** Shared with global-teardown (same process). */
export const state: { ceph?: Ceph } = ((
  globalThis as { __meridianTestState?: { ceph?: Ceph } }
).__meridianTestState ??= {});

/**
 * Runs once, in jest's parent process, before the integration project: starts one Ceph RGW
 * for the whole run (unless `MERIDIAN_TEST_S3_ENDPOINT` names one already) and publishes it
 * through the environment that the test workers inherit. Without radosgw it starts nothing,
 * and every S3 test then fails with an install hint (never a silent skip).
 */
export default async function globalSetup(): Promise<void> {
  // One directory per run for every node's log lines and every secret the tests create; the
  // teardown scans it (test/helpers/log-scan.ts).
  const logDir = join(__dirname, '..', '..', 'test-results', 'log-scan');
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  process.env.MERIDIAN_TEST_LOG_DIR = logDir;
  if (process.env.MERIDIAN_TEST_S3_ENDPOINT) return;
  if (!s3Available()) {
    process.stderr.write('\nradosgw not found: S3 integration tests will fail\n');
    return;
  }
  const started = Date.now();
  const ceph = await startCeph();
  state.ceph = ceph;
  process.env.MERIDIAN_TEST_S3_ENDPOINT = ceph.endpoint;
  process.env.AWS_ACCESS_KEY_ID = ceph.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = ceph.secretAccessKey;
  process.env.AWS_REGION = ceph.region;
  if (process.env.MERIDIAN_TEST_LOG) {
    process.stderr.write(`\nCeph RGW at ${ceph.endpoint} in ${Date.now() - started} ms\n`);
  }
}
