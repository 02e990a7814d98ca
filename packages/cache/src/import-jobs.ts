import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { OciError } from '@meridian/oci';
import type { Registry, RequestInfo } from '@meridian/registry';
import {
  emptyProgress,
  Importer,
  resolveImport,
  type ImportProgress,
  type ImportResult,
  type ImportSpec,
} from './importer';
import type { UpstreamCredentials } from './remote-registry';
import { UpstreamError } from './upstream-error';
import { defaultUpstreamGuard, type UpstreamGuard } from './upstream-guard';
import { importsFinished } from './metrics';

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
  progress: ImportProgress;
  result?: ImportResult;
  error?: string;
}

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
  /** Finished imports remembered for `GET`. Default 200. */
  keep?: number;
  /** Per upstream request, until the response head. Default 30 s. */
  timeoutMs?: number;
  /** Which addresses an import may reach. Default: the default guard. */
  guard?: UpstreamGuard;
}

/**
 * Imports on the primary: started by the admin API, run in the background (a few at a time),
 * their status and progress kept in memory for `GET` — an import interrupted by a restart is
 * run again by whoever asked, cheaply, since blobs already stored are not fetched again (ADR
 * 0019). Each import ends with an `importFinished` event per target.
 */
export class ImportJobs {
  private readonly jobs = new Map<string, ImportJob>();
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private readonly importer: Importer;

  constructor(private readonly opts: ImportJobsOptions) {
    this.importer = new Importer(opts.registry, { timeoutMs: opts.timeoutMs, guard: opts.guard });
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
      progress: emptyProgress(),
    };
    this.jobs.set(job.id, job);
    this.trim();
    void this.opts.registry.events.withRequest(request, () => this.run(job, spec));
    return job;
  }

  get(id: string): ImportJob {
    const job = this.jobs.get(id);
    if (!job) throw new OciError('NAME_UNKNOWN', `no import ${id.slice(0, 64)}`, undefined, 404);
    return job;
  }

  list(): ImportJob[] {
    return [...this.jobs.values()].reverse();
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
    }
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

  private trim(): void {
    const keep = this.opts.keep ?? 200;
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= keep) break;
      if (j.status === 'succeeded' || j.status === 'failed') this.jobs.delete(id);
    }
  }
}

function bad(message: string): OciError {
  return new OciError('UNSUPPORTED', message, undefined, 400);
}

function messageOf(err: unknown): string {
  if (err instanceof UpstreamError || err instanceof OciError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
