import { state } from './global-setup';

/** Stops what global-setup started (only that). */
export default async function globalTeardown(): Promise<void> {
  const ceph = state.ceph;
  state.ceph = undefined;
  if (!ceph) return;
  await ceph.stop();
  delete process.env.MERIDIAN_TEST_S3_ENDPOINT;
}
