/**
 * `reconcileRunState` against a reconcile run that finishes while it is being read. BullMQ is
 * replaced by a queue whose one job completes (state and report written together, as BullMQ's
 * script does) right after the first read of it, whichever read that is.
 */
import type { ReplicationQueues } from './queues';
import { reconcileRunState } from './schedules';

const REPORT = {
  repositories: 3,
  drift: { tags: 0, manifests: 0, blobs: 0, referrers: 0, locks: 0 },
};
let reads = 0;
const job = (): { state: string; returnvalue: unknown } =>
  reads++ === 0
    ? { state: 'active', returnvalue: null }
    : { state: 'completed', returnvalue: REPORT };

jest.mock('bullmq', () => ({
  Queue: class {
    getJob(): Promise<unknown> {
      const snapshot = job();
      return Promise.resolve({
        returnvalue: snapshot.returnvalue,
        failedReason: undefined,
        getState: () => Promise.resolve(job().state),
      });
    }
    getJobState(): Promise<string> {
      return Promise.resolve(job().state);
    }
    close(): Promise<void> {
      return Promise.resolve();
    }
  },
}));

describe('reconcileRunState', () => {
  beforeEach(() => {
    reads = 0;
  });

  it('never reports a run completed without its report, when it completes mid-read', async () => {
    const queues = { redis: {}, bullPrefix: 'bull' } as unknown as ReplicationQueues;
    const first = await reconcileRunState(queues, 'westeurope', '4');
    expect(first.state === 'completed' && !first.report).toBe(false);
    // Asked again once it finished: completed, with the report.
    const again = await reconcileRunState(queues, 'westeurope', '4');
    expect(again).toEqual({ region: 'westeurope', job: '4', state: 'completed', report: REPORT });
  });
});
