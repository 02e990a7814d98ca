import { listAllObjects, readJson, type ObjectStore } from '@meridian/storage';
import type { ImportProgress, ImportResult } from './importer';

/** Where import jobs live in the primary region's object store (never replicated). */
export const IMPORT_JOBS_ROOT = '_cache/imports/';

/** An import as the admin API shows it. */
export interface ImportJob {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  source: string;
  /** The local targets, `repo:tag` (or `repo` when the source is a digest). */
  targets: string[];
  credentialSet?: string;
  force: boolean;
  dryRun: boolean;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Last written by the node running it; a queued or running job not updated for long was interrupted. */
  updatedAt: string;
  progress: ImportProgress;
  result?: ImportResult;
  error?: string;
}

const ID_RE = /^[0-9a-f-]{36}$/;

/**
 * Import job records, one JSON object each under `_cache/imports/<id>` in the primary's store,
 * as cache rules and credential sets are: so a job's status outlives the node that ran it, and
 * any primary node can answer for it. Never holds credentials (only a credential set's name).
 */
export class ImportJobStore {
  constructor(private readonly store: ObjectStore) {}

  async put(job: ImportJob): Promise<void> {
    await this.store.put(IMPORT_JOBS_ROOT + job.id, Buffer.from(JSON.stringify(job)), {
      contentType: 'application/json',
    });
  }

  get(id: string): Promise<ImportJob | undefined> {
    if (!ID_RE.test(id)) return Promise.resolve(undefined);
    return readJson<ImportJob>(this.store, IMPORT_JOBS_ROOT + id);
  }

  /** The `limit` most recently written jobs, newest first by creation. */
  async recent(limit: number): Promise<ImportJob[]> {
    const objects = await listAllObjects(this.store, IMPORT_JOBS_ROOT);
    objects.sort((a, b) => b.modified.getTime() - a.modified.getTime());
    const jobs = await Promise.all(
      objects.slice(0, limit).map((o) => readJson<ImportJob>(this.store, o.key)),
    );
    return jobs
      .filter((j): j is ImportJob => j !== undefined)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /**
   * Bounded history: deletes the records beyond the `keep` most recently written, and those not
   * written for `maxAgeMs` (a finished job's record is last written when it finishes). Records
   * written within `spareMs` (live jobs write theirs every few seconds) are never deleted.
   */
  async trim(keep: number, maxAgeMs: number, spareMs: number, now = Date.now()): Promise<number> {
    const objects = await listAllObjects(this.store, IMPORT_JOBS_ROOT);
    objects.sort((a, b) => b.modified.getTime() - a.modified.getTime());
    const doomed = objects.filter(
      (o, i) =>
        now - o.modified.getTime() > spareMs &&
        (i >= keep || now - o.modified.getTime() > maxAgeMs),
    );
    for (const o of doomed) await this.store.delete(o.key).catch(() => {});
    return doomed.length;
  }
}
