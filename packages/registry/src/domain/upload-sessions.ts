import { randomBytes, randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createDigester, isValidName, OciError, parseDigest, type Digest } from '@meridian/oci';
import { Layout, listChildPrefixes, readJson, type ObjectStore } from '@meridian/storage';
import type { BlobInfo, BlobStore } from './blob-store';
import type { RegistryEvents } from './events';
import { meter } from './metered-stream';
import { translated } from './storage-errors';
import { WholeBlobUpload, digestMismatch, sizeInvalid } from './whole-blob-upload';

/** An upload session as persisted in storage (so it survives a node restart). */
export interface UploadState {
  id: string;
  repository: string;
  startedAt: number;
  updatedAt: number;
  /** Bytes received so far; the next chunk must start here. */
  offset: number;
  /**
   * Stored chunks, in order. `writer` is the write's own token in the chunk's key
   * (`Layout.uploadChunk`): two writes never share a key, so this list names exactly the bytes
   * the session holds. (Absent in states written before it existed.)
   */
  chunks: { offset: number; size: number; writer?: string }[];
}

export interface UploadSessionOptions {
  /** Sessions idle longer than this are purged. Default 1 hour. */
  idleTimeoutMs?: number;
  /**
   * Whether `POST /blobs/uploads/?mount=<digest>` without `from` may link any stored blob with
   * that digest (the spec's optional automatic mount; `OCI_AUTOMATIC_CROSSMOUNT` in the
   * conformance suite). Default false: a mount must name a source repository that has the blob.
   */
  automaticCrossMount?: boolean;
}

/** What starting an upload with `?mount=` gave: the mounted blob, or a new session. */
export type MountOrSession =
  { mounted: BlobInfo; session?: undefined } | { mounted?: undefined; session: UploadState };

/** Inclusive byte range from a PATCH's `Content-Range`. */
export interface ChunkRange {
  start: number;
  end: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A sha256 of a session's chunks so far, kept while this process writes them. */
interface RunningHash {
  hash: Hash;
  /** Bytes hashed: the session's offset after the last chunk this process wrote. */
  offset: number;
  /** That chunk's writer token (undefined before the first chunk). */
  last?: string;
}

/**
 * Blob upload sessions: each PATCH streams into its own chunk object; completion verifies the
 * digest of the stored chunks and commits the blob atomically (nothing is visible under `blobs/`
 * before that). One request writes to a session at a time (a concurrent one gets 416; see
 * docs/adr/0007). A running sha256 per session lets completion skip re-reading the chunks on
 * the node that wrote them all.
 */
export class UploadSessions {
  private readonly hashes = new Map<string, RunningHash>();
  /** Sessions a request of this process is writing to, committing or cancelling now. */
  private readonly busy = new Set<string>();
  /** Sessions ended here whose state is still being removed. */
  private readonly ended = new Set<string>();
  readonly idleTimeoutMs: number;
  readonly automaticCrossMount: boolean;
  private readonly whole: WholeBlobUpload;

  constructor(
    private readonly store: ObjectStore,
    private readonly blobs: BlobStore,
    events: RegistryEvents,
    opts: UploadSessionOptions = {},
  ) {
    this.whole = new WholeBlobUpload(store, blobs, events);
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 3600_000;
    this.automaticCrossMount = opts.automaticCrossMount ?? false;
  }

  /**
   * `POST ?mount=<digest>[&from=<repo>]`: mounts the blob when `from` has it (or, without `from`,
   * when automatic mounts are allowed and the blob is stored); otherwise starts a session, as the
   * spec asks. Throws `DIGEST_INVALID` for a malformed digest.
   */
  async mountOrCreate(repository: string, digest: string, from?: string): Promise<MountOrSession> {
    const d = parseDigest(digest);
    await this.blobs.repositoryLocks.assertUploadAllowed(repository);
    const source = from === undefined || from === '' ? undefined : from;
    const mountable = source === undefined ? this.automaticCrossMount : isValidName(source);
    const mounted = mountable ? await this.blobs.mount(repository, d, source) : undefined;
    if (mounted) return { mounted };
    return { session: await this.create(repository) };
  }

  create(repository: string): Promise<UploadState> {
    return translated(async () => {
      await this.blobs.repositoryLocks.assertUploadAllowed(repository);
      const state = newState(repository);
      await this.save(state);
      return state;
    });
  }

  get(repository: string, id: string): Promise<UploadState> {
    return translated(async () => {
      if (!UUID_RE.test(id) || this.ended.has(id)) throw uploadUnknown(id);
      const state = await readJson<UploadState>(this.store, Layout.uploadState(id));
      if (!state || state.repository !== repository) throw uploadUnknown(id);
      if (Date.now() - state.updatedAt > this.idleTimeoutMs) throw uploadUnknown(id);
      return state;
    });
  }

  /** Appends a chunk. With `range`, it must start at the current offset (else 416). */
  append(
    repository: string,
    id: string,
    body: Readable,
    opts: { range?: ChunkRange; contentLength?: number } = {},
  ): Promise<UploadState> {
    return this.exclusive(id, body, async () => {
      const state = await this.get(repository, id);
      this.checkChunk(state, body, opts);
      const { range, contentLength } = opts;
      return this.writeChunk(
        state,
        body,
        contentLength ?? (range ? range.end - range.start + 1 : undefined),
      );
    });
  }

  /**
   * Finishes an upload: an optional last chunk (checked against `Content-Range` like a PATCH),
   * the digest check, an atomic commit and the repository link. A refused last chunk (416) leaves
   * the session as it was; once the commit is attempted the session is gone either way.
   */
  complete(
    repository: string,
    id: string,
    digest: string,
    body?: { stream: Readable; contentLength?: number; range?: ChunkRange },
  ): Promise<BlobInfo> {
    return this.exclusive(id, body?.stream, async () => {
      const d = parseDigest(digest);
      // Looked up alongside the session, for the common case of a blob sent whole in this PUT.
      const stored = body ? this.whole.storedSize(Layout.blobData(d)) : undefined;
      stored?.catch(() => {}); // unused when the session has chunks; awaited otherwise
      let state = await this.get(repository, id);
      if (body && state.chunks.length === 0) {
        // The whole blob in this one request (POST, then PUT with the body): straight into place.
        this.checkChunk(state, body.stream, body);
        try {
          return await this.whole.write(repository, d, body.stream, body.contentLength, { stored });
        } finally {
          await this.discard(id, 'background', false); // nothing but its state was stored
        }
      }
      if (body) {
        this.checkChunk(state, body.stream, body);
        const length =
          body.contentLength ?? (body.range ? body.range.end - body.range.start + 1 : undefined);
        // The commit follows at once, so the state need not be persisted for this last chunk.
        state = await this.writeChunk(state, body.stream, length, false);
      }
      try {
        return await this.commit(state, d);
      } finally {
        await this.discard(id);
      }
    });
  }

  /**
   * A monolithic upload (`POST ?digest=`): one request, one chunk, commit. `verified`: see
   * `WholeBlobUpload.write` (in-process copies of bytes already hashed to `digest` only).
   */
  async monolithic(
    repository: string,
    digest: string,
    body: Readable,
    contentLength?: number,
    opts: { verified?: boolean } = {},
  ): Promise<BlobInfo> {
    return translated(async () => {
      await this.blobs.repositoryLocks.assertUploadAllowed(repository);
      return this.whole.write(repository, parseDigest(digest), body, contentLength, opts);
    });
  }

  cancel(repository: string, id: string): Promise<void> {
    return this.exclusive(id, undefined, async () => {
      await this.get(repository, id);
      await this.discard(id, 'now');
    });
  }

  /** Deletes sessions idle for longer than the timeout. Returns how many were purged. */
  purgeExpired(now = Date.now()): Promise<number> {
    return translated(async () => {
      let purged = 0;
      for (const prefix of await listChildPrefixes(this.store, Layout.uploadsRoot)) {
        const id = prefix.slice(Layout.uploadsRoot.length, -1);
        const s = await readJson<UploadState>(this.store, Layout.uploadState(id));
        if (s && now - s.updatedAt <= this.idleTimeoutMs) continue;
        await this.discard(id, 'now');
        purged++;
      }
      return purged;
    });
  }

  /** A chunk with a `Content-Range` must continue the upload exactly (416 otherwise). */
  private checkChunk(
    state: UploadState,
    body: Readable,
    opts: { range?: ChunkRange; contentLength?: number },
  ): void {
    const { range, contentLength } = opts;
    if (!range) return;
    if (range.start !== state.offset || range.end < range.start) {
      body.resume();
      throw new OciError(
        'BLOB_UPLOAD_INVALID',
        `chunk range ${range.start}-${range.end} does not continue the upload at offset ${state.offset}`,
        { offset: state.offset },
        416,
      );
    }
    if (contentLength !== undefined && contentLength !== range.end - range.start + 1) {
      body.resume();
      throw new OciError('SIZE_INVALID', 'Content-Length does not match Content-Range');
    }
  }

  private async writeChunk(
    state: UploadState,
    body: Readable,
    contentLength?: number,
    persist = true,
  ): Promise<UploadState> {
    const running = this.hashes.get(state.id);
    const hash = running && this.covers(running, state) ? running.hash : undefined;
    if (!hash) this.hashes.delete(state.id);
    // A key of its own: a write elsewhere at this offset (another node) can never replace it.
    const writer = randomBytes(6).toString('hex');
    const key = Layout.uploadChunk(state.id, state.offset, writer);
    const metered = meter(body, hash);
    try {
      // Chunks are scratch until the commit, whose move makes the blob durable.
      await this.store.put(key, metered.stream, { size: contentLength, durable: false });
      const n = metered.bytes();
      if (contentLength !== undefined && n !== contentLength) {
        await this.store.delete(key);
        throw sizeInvalid(n, contentLength);
      }
      if (n === 0) {
        await this.store.delete(key);
      } else {
        state.chunks.push({ offset: state.offset, size: n, writer });
        state.offset += n;
      }
      state.updatedAt = Date.now();
      if (persist) await this.save(state);
    } catch (err) {
      // The running hash has seen bytes that were not kept: completion must re-read the chunks.
      this.hashes.delete(state.id);
      throw err;
    }
    if (hash) this.hashes.set(state.id, { hash, offset: state.offset, last: lastWriter(state) });
    return state;
  }

  /**
   * Whether a running hash covers exactly the session's chunks: the state ends with the chunk
   * this process wrote last (a chunk another node wrote since, or instead, has another token).
   */
  private covers(running: RunningHash, state: UploadState): boolean {
    return running.offset === state.offset && running.last === lastWriter(state);
  }

  /**
   * Verifies the digest of the chunks the state names (stored bytes, never what a client said)
   * and makes exactly those chunks the blob. A stored copy of another size is corrupt: replaced.
   */
  private async commit(state: UploadState, d: Digest): Promise<BlobInfo> {
    const actual = await this.digestOf(state, d);
    if (actual !== d.hex) throw digestMismatch(d);
    const key = Layout.blobData(d);
    // Under the blob's lock (ADR 0012): a stored copy found here cannot be collected before
    // the link to it is written.
    await this.blobs.guard.shared(this.blobs.locks(state.repository, d), async () => {
      const existing = await this.whole.storedSize(key);
      if (existing !== state.offset) {
        const keys = state.chunks.map((c) => chunkKey(state, c));
        if (keys.length === 0) await this.store.put(key, Buffer.alloc(0), { size: 0 });
        // One chunk (a monolithic or streamed upload): a rename on fs, not a copy.
        else if (keys.length === 1 && this.store.move) await this.store.move(keys[0]!, key);
        else await this.store.concat(keys, key);
        if (existing !== undefined) this.whole.countCorrupt();
      }
      await this.blobs.linkLocked(state.repository, d, state.offset);
    });
    return this.whole.announce(state.repository, d, state.offset);
  }

  /**
   * Runs a request that writes to, commits or cancels session `id`, and is the only one doing so
   * in this process: another one meanwhile gets 416 at once (its body drained, not stored).
   */
  private exclusive<T>(id: string, body: Readable | undefined, fn: () => Promise<T>): Promise<T> {
    return translated(async () => {
      if (this.busy.has(id)) {
        body?.resume();
        throw new OciError(
          'BLOB_UPLOAD_INVALID',
          'another request is writing to this upload; retry once it has finished',
          undefined,
          416,
        );
      }
      this.busy.add(id);
      try {
        return await fn();
      } finally {
        this.busy.delete(id);
      }
    });
  }

  /** The session's digest (hex): from the running hash when it covers everything, else re-read. */
  private async digestOf(state: UploadState, d: Digest): Promise<string> {
    const running = this.hashes.get(state.id);
    if (d.algorithm === 'sha256' && running && this.covers(running, state)) {
      return running.hash.copy().digest('hex');
    }
    const hash = createDigester(d.algorithm);
    for (const c of state.chunks) {
      const { body } = await this.store.get(chunkKey(state, c));
      let n = 0;
      for await (const chunk of body) {
        n += (chunk as Buffer).length;
        hash.update(chunk as Buffer);
      }
      if (n !== c.size) throw digestMismatch(d); // not the chunk the state recorded
    }
    return hash.digest('hex');
  }

  private async save(state: UploadState): Promise<void> {
    if (state.offset === 0 && state.chunks.length === 0 && !this.hashes.has(state.id)) {
      this.hashes.set(state.id, { hash: createDigester('sha256'), offset: 0 });
    }
    // Survives a restart or a process crash; a power loss may lose an unfinished upload, which
    // the client then restarts (committed blobs are durable).
    await this.store.put(Layout.uploadState(state.id), Buffer.from(JSON.stringify(state)), {
      durable: false,
    });
  }

  /**
   * Ends a session; the id is unknown from now on. `now` (a cancel, a purge) removes everything
   * before returning. `background` (after a commit, which answers the client sooner) marks the
   * id ended in this process at once and removes the state and chunks right after: another node
   * may still see the state for that moment, and the purge sweeps anything a crash leaves.
   */
  private async discard(
    id: string,
    when: 'now' | 'background' = 'background',
    chunks = true,
  ): Promise<void> {
    this.hashes.delete(id);
    if (when === 'now') {
      await this.store.delete(Layout.uploadState(id));
      await this.store.deletePrefix(Layout.upload(id));
      return;
    }
    if (this.ended.size >= 10_000) this.ended.clear();
    this.ended.add(id);
    void this.store
      .delete(Layout.uploadState(id))
      .then(async () => {
        if (chunks) await this.store.deletePrefix(Layout.upload(id));
      })
      .catch(() => {})
      .finally(() => this.ended.delete(id));
  }
}

function lastWriter(state: UploadState): string | undefined {
  return state.chunks[state.chunks.length - 1]?.writer;
}

function chunkKey(state: UploadState, c: UploadState['chunks'][number]): string {
  return Layout.uploadChunk(state.id, c.offset, c.writer);
}

function newState(repository: string): UploadState {
  const now = Date.now();
  return { id: randomUUID(), repository, startedAt: now, updatedAt: now, offset: 0, chunks: [] };
}

export function uploadUnknown(id: string): OciError {
  return new OciError('BLOB_UPLOAD_UNKNOWN', `blob upload unknown to registry: ${id.slice(0, 64)}`);
}
