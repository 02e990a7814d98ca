import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { OciError } from '@meridian/oci';
import type { Registry, RequestInfo } from '@meridian/registry';
import type { ObjectStore } from '@meridian/storage';
import { ImportJobStore, type ImportJob } from './import-job-store';
import { emptyProgress, Importer, resolveImport, type ImportSpec } from './importer';
import type { UpstreamCredentials } from './remote-registry';
import { UpstreamError } from './upstream-error';
import { defaultUpstreamGuard, type UpstreamGuard } from './upstream-guard';
import { importsFinished } from './metrics';

/** The admin API's body: `POST /meridian/v1/admin/import`. */
export interface ImportRequestBody {
  source?: unknown;
  images?: unknown;
  repository?: unknown;
  username?: unknown;
  password?: unknown;
  credentialSet?: unknown;
  force?: unknown;
  dryRun?: unknown;
}

export interface ImportJobsOptions {
  registry: Registry;
  /** A credential set's username and password, by name; throws when there is none. */
  credentials?: (name: string) => Promise<UpstreamCredentials>;
  log: Logger;
  /** Imports running at once on this node; more wait in line. Default 2. */
  concurrency?: number;
  /**
   * Where job records are kept (the primary region's store), so a job's status survives a
   * restart. Without one, jobs live in this process's memory only.
   */
  store?: ObjectStore;
  /** Finished imports whose records are kept, the newest. Default 500. */
  keep?: number;
  /** …for at most this many days. Default 30. */
  keepDays?: number;
  /** How often a queued or running job's record is rewritten (progress, liveness), ms. Default 2000. */
  heartbeatMs?: number;
  /** A queued or running job whose record was not written for this long was interrupted, ms. Default 15000. */
  staleMs?: number;
  /** Per upstream request, until the response head. Default 30 s. */
  timeoutMs?: number;
  /** Which addresses an import may reach. Default: the default guard. */
  guard?: UpstreamGuard;
}

/** How many jobs `list` shows. */
const LIST_LIMIT = 100;

/** Why a job that was queued or running when its node stopped ended. */
export const INTERRUPTED =
  'interrupted by a restart: the node running it stopped before it finished; run it again (blobs already copied are not fetched again)';

/**
 * Imports on the primary: started by the admin API, run in the background (a few at a time).
 * Each job's record (status, progress, result or error, times; never credentials) is written to
 * the primary's store when it changes and every `heartbeatMs` while it is queued or running, so
 * `GET …/import/:id` answers after a restart, from any primary node. A job whose node died is
 * not resumed (its credentials were never stored): once its record is `staleMs` old it is
 * reported failed (`INTERRUPTED`), and running it again is cheap since blobs already stored are
 * not fetched again (ADR 0019). Each import ends with an `importFinished` event per target.
 */
export class ImportJobs {
  /** The jobs this node runs or ran, freshest progress first. */
  private readonly jobs = new Map<string, ImportJob>();
  /** Each job's record writes, one at a time, so the last written is the latest. */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private readonly importer: Importer;
  private readonly records?: ImportJobStore;
  private readonly heartbeat?: NodeJS.Timeout;
  private readonly timers: NodeJS.Timeout[] = [];
  private lastTrim = 0;
  private closed = false;

  constructor(private readonly opts: ImportJobsOptions) {
    this.importer = new Importer(opts.registry, { timeoutMs: opts.timeoutMs, guard: opts.guard });
    if (!opts.store) return;
    this.records = new ImportJobStore(opts.store);
    this.heartbeat = setInterval(() => {
      for (const j of this.jobs.values()) if (!isOver(j)) void this.write(j);
    }, opts.heartbeatMs ?? 2000).unref();
    // Jobs a dead node left queued or running: failed once their records are stale.
    const sweep = () => void this.sweep().catch(() => {});
    sweep();
    this.timers.push(setTimeout(sweep, (opts.staleMs ?? 15_000) + 1000).unref());
  }

  /** Checks the request, queues the import and returns its job at once. */
  async start(body: ImportRequestBody, request: RequestInfo): Promise<ImportJob> {
    const spec = await this.spec(body);
    const { targets, source } = resolveImport(spec);
    const job: ImportJob = {
      id: randomUUID(),
      status: 'queued',
      source: `${source.registry}/${source.repository}${source.reference.includes(':') ? '@' : ':'}${source.reference}`,
      targets: targets.map((t) => (t.tag ? `${t.repository}:${t.tag}` : t.repository)),
      ...(typeof body.credentialSet === 'string' && { credentialSet: body.credentialSet }),
      force: spec.force === true,
      dryRun: spec.dryRun === true,
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      progress: emptyProgress(),
    };
    this.jobs.set(job.id, job);
    await this.write(job); // no job is started that GET could not find
    this.forget();
    void this.opts.registry.events.withRequest(request, () => this.run(job, spec));
    return job;
  }

  async get(id: string): Promise<ImportJob> {
    const job = this.jobs.get(id) ?? (await this.records?.get(id));
    if (!job) throw new OciError('NAME_UNKNOWN', `no import ${id.slice(0, 64)}`, undefined, 404);
    return this.jobs.has(job.id) ? job : this.settled(job);
  }

  /** The newest jobs first: the 100 most recently written (each a read from the store). */
  async list(): Promise<ImportJob[]> {
    const stored = this.records ? await this.records.recent(LIST_LIMIT) : [];
    const byId = new Map(stored.map((j) => [j.id, j]));
    for (const j of this.jobs.values()) byId.set(j.id, j);
    const all = await Promise.all(
      [...byId.values()].map((j) => (this.jobs.has(j.id) ? Promise.resolve(j) : this.settled(j))),
    );
    return all.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /**
   * Stops writing records. Jobs still queued or running here are recorded as interrupted now
   * (a node that dies without closing leaves that to the next reader, once they are stale).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const t of this.timers) clearTimeout(t);
    const live = [...this.jobs.values()].filter((j) => !isOver(j));
    for (const j of live) interrupt(j);
    await Promise.all(live.map((j) => this.write(j)));
    this.closed = true;
  }

  /** Resolves when every started import finished (a node's close, tests). */
  async idle(): Promise<void> {
    while ([...this.jobs.values()].some((j) => j.status === 'queued' || j.status === 'running'))
      await new Promise((r) => setTimeout(r, 50));
  }

  private async run(job: ImportJob, spec: ImportSpec): Promise<void> {
    if (this.running >= (this.opts.concurrency ?? 2))
      await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    job.status = 'running';
    job.startedAt = new Date().toISOString();
    void this.write(job);
    try {
      const result = await this.importer.run(spec, job.progress);
      job.result = result;
      job.status = 'succeeded';
      if (!spec.dryRun) {
        const { targets } = resolveImport(spec);
        for (const t of targets)
          await this.opts.registry.events.emit({
            type: 'importFinished',
            repository: t.repository,
            digest: result.digest,
            mediaType: result.mediaType,
            ...(t.tag && { tag: t.tag }),
            source: result.source,
            at: Date.now(),
          });
      }
      importsFinished.inc({ status: 'succeeded' });
    } catch (err) {
      job.status = 'failed';
      job.error = messageOf(err);
      importsFinished.inc({ status: 'failed' });
      this.opts.log.warn({ import: job.id, source: job.source, err: job.error }, 'import failed');
    } finally {
      job.finishedAt = new Date().toISOString();
      this.running--;
      this.waiting.shift()?.();
      await this.write(job);
      void this.trimRecords();
    }
  }

  /**
   * Writes `job`'s record after the writes before it (so the last one written is the newest
   * state). Failures are logged, not thrown: the import goes on; the next write retries.
   */
  private write(job: ImportJob): Promise<void> {
    if (!this.records || this.closed) return Promise.resolve();
    const records = this.records;
    const next = (this.writes.get(job.id) ?? Promise.resolve()).then(async () => {
      job.updatedAt = new Date().toISOString();
      try {
        await records.put(job);
      } catch (err) {
        this.opts.log.warn({ import: job.id, err: messageOf(err) }, 'import: record not written');
      }
    });
    this.writes.set(job.id, next);
    void next.then(() => {
      if (this.writes.get(job.id) === next) this.writes.delete(job.id);
    });
    return next;
  }

  /** A stored job as it stands: one left queued or running by a node that stopped is failed. */
  private async settled(job: ImportJob): Promise<ImportJob> {
    const staleMs = this.opts.staleMs ?? 15_000;
    if (isOver(job) || Date.now() - Date.parse(job.updatedAt) <= staleMs) return job;
    interrupt(job);
    await this.write(job);
    return job;
  }

  private async sweep(): Promise<void> {
    if (!this.records) return;
    for (const j of await this.records.recent(this.opts.keep ?? 500))
      if (!this.jobs.has(j.id)) await this.settled(j);
    await this.trimRecords(true);
  }

  /** Bounded history in the store: at most once a minute. */
  private async trimRecords(now = false): Promise<void> {
    if (!this.records || this.closed || (!now && Date.now() - this.lastTrim < 60_000)) return;
    this.lastTrim = Date.now();
    const days = this.opts.keepDays ?? 30;
    await this.records
      .trim(this.opts.keep ?? 500, days * 86_400_000, (this.opts.staleMs ?? 15_000) * 2)
      .catch((err: unknown) =>
        this.opts.log.warn({ err: messageOf(err) }, 'import: old records not trimmed'),
      );
  }

  /** The body as an `ImportSpec`, with the credential set's username and password. */
  private async spec(body: ImportRequestBody): Promise<ImportSpec> {
    const str = (k: keyof ImportRequestBody): string | undefined => {
      const v = body[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string' || v.length === 0 || v.length > 1024)
        throw bad(`"${k}" must be a non-empty string`);
      return v;
    };
    const bool = (k: keyof ImportRequestBody): boolean => {
      const v = body[k];
      if (v === undefined) return false;
      if (typeof v !== 'boolean') throw bad(`"${k}" must be true or false`);
      return v;
    };
    const source = str('source');
    if (!source) throw bad('"source" is required: REGISTRY/REPO[:TAG|@DIGEST]');
    let images: string[] | undefined;
    if (body.images !== undefined) {
      if (
        !Array.isArray(body.images) ||
        body.images.length > 32 ||
        !body.images.every((i) => typeof i === 'string')
      )
        throw bad('"images" must be a list of at most 32 REPO[:TAG] strings');
      images = body.images;
    }
    const username = str('username');
    const password = str('password');
    const credentialSet = str('credentialSet');
    if ((username === undefined) !== (password === undefined))
      throw bad('"username" and "password" go together');
    if (username && credentialSet) throw bad('give either a credential set or a username');
    let credentials: UpstreamCredentials | undefined;
    let credentialName: string | undefined;
    if (username) {
      credentials = { username, password: password! };
      credentialName = `the credentials given for ${username}`;
    } else if (credentialSet) {
      if (!this.opts.credentials)
        throw bad('credential sets are not configured on this node (upstream.credentialKey)');
      credentials = await this.opts.credentials(credentialSet);
      credentialName = `the credentials of credential set "${credentialSet}"`;
    }
    const spec: ImportSpec = {
      source,
      images,
      repository: str('repository'),
      credentials,
      credentialName,
      force: bool('force'),
      dryRun: bool('dryRun'),
    };
    const { source: from } = resolveImport(spec); // names checked before the job exists
    try {
      (this.opts.guard ?? defaultUpstreamGuard()).checkUrl(from.baseUrl);
    } catch (err) {
      throw bad(
        `"source": ${from.registry}: ${(err as Error).message}, refused as an upstream (an operator can allow it with upstream.allowAddresses)`,
      );
    }
    return spec;
  }

  /** Finished jobs leave memory (their records stay in the store, if any). */
  private forget(): void {
    const keep = this.records ? 50 : (this.opts.keep ?? 500);
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= keep) break;
      if (isOver(j)) this.jobs.delete(id);
    }
  }
}

function isOver(job: ImportJob): boolean {
  return job.status === 'succeeded' || job.status === 'failed';
}

function interrupt(job: ImportJob): void {
  job.status = 'failed';
  job.error = INTERRUPTED;
  job.finishedAt = new Date().toISOString();
}

function bad(message: string): OciError {
  return new OciError('UNSUPPORTED', message, undefined, 400);
}

function messageOf(err: unknown): string {
  if (err instanceof UpstreamError || err instanceof OciError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
