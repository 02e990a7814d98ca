import { state } from './global-setup';
import { scanLogs } from './log-scan';

/** Stops what global-setup started (only that), then fails the run if a secret was logged. */
export default async function globalTeardown(): Promise<void> {
  const ceph = state.ceph;
  state.ceph = undefined;
  if (ceph) {
    await ceph.stop();
    delete process.env.MERIDIAN_TEST_S3_ENDPOINT;
  }
  const logDir = process.env.MERIDIAN_TEST_LOG_DIR;
  if (!logDir) return;
  const scan = scanLogs(logDir);
  process.stderr.write(
    `\nlog scan: ${scan.lines} lines in ${scan.files} files, ${scan.secrets} secrets, ${scan.leaks.length} leaks\n`,
  );
  if (scan.leaks.length > 0)
    throw new Error(`secrets in the nodes' logs:\n${scan.leaks.slice(0, 20).join('\n')}`);
}
