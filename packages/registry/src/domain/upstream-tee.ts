import { PassThrough, type Readable } from 'node:stream';

export interface UpstreamTeeOptions {
  /** Bytes the source must deliver; ending early is an upstream failure. */
  length: number;
  /** The source failing to deliver a byte for this long, while a reader waits, fails it. */
  stallTimeoutMs: number;
  /** Whether to serve a client (`client`); without one, only `local` is fed. Default true. */
  client?: boolean;
  /** Whether to feed a local copy (`local`). Default true. */
  local?: boolean;
  /**
   * Called once if the local copy is dropped while the upstream is fine (the copy failed, or
   * accepted nothing for `stallTimeoutMs`).
   */
  onLocalDropped?: (err: Error) => void;
  /** Called once if the upstream fails, ends short or stalls (both sides are then destroyed). */
  onUpstreamFailed?: (err: Error) => void;
}

/**
 * Streams an upstream body to a client and, at once, to a local copy — without buffering: the
 * source is paused while a reader catches up. The two sides fail apart:
 *
 * - the local copy failing (`dropLocal`, e.g. a full disk) or not draining for `stallTimeoutMs`
 *   is dropped; the client keeps streaming from upstream;
 * - the client going away leaves the local copy running (the region still gets the blob), and
 *   so does a client that reads nothing for `stallTimeoutMs` while the copy runs: it is cut;
 * - the upstream failing, ending short, or sending nothing for `stallTimeoutMs` destroys both
 *   sides at once, so the client's response is aborted (and it retries) instead of hanging.
 */
export class UpstreamTee {
  readonly client = new PassThrough();
  readonly local = new PassThrough();
  private clientOn: boolean;
  private localOn: boolean;
  private done = false;
  private failed = false;
  private received = 0;
  /** The sinks the source is paused for. */
  private readonly waitingFor = new Set<PassThrough>();
  private stallTimer: NodeJS.Timeout | undefined;
  private localDroppedNow!: () => void;
  /** Resolves (false) when the local copy is dropped. */
  readonly localDropped = new Promise<false>((resolve) => {
    this.localDroppedNow = () => resolve(false);
  });
  private localTimer: NodeJS.Timeout | undefined;
  private clientTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: Readable,
    private readonly opts: UpstreamTeeOptions,
  ) {
    this.clientOn = opts.client ?? true;
    this.localOn = opts.local ?? true;
    // Errors reach the consumers through their pipelines; a sink not consumed yet must not
    // crash the process with an unhandled 'error'.
    this.client.on('error', () => {});
    this.local.on('error', () => {});
    if (!this.clientOn) this.client.destroy();
    if (!this.localOn) this.local.destroy();
    this.client.on('close', () => {
      if (this.done || !this.clientOn) return;
      this.clientOn = false; // the client went away: finish the local copy alone
      this.release(this.client);
      if (!this.localOn) this.abandon();
    });
    source.on('data', (chunk: Buffer) => this.onData(chunk));
    source.on('end', () => this.onEnd());
    source.on('error', (err) => this.fail(err));
    this.arm();
  }

  /** Stops feeding the local copy (it failed); the client is served on. */
  dropLocal(err: Error): void {
    if (!this.localOn) return;
    this.localOn = false;
    clearTimeout(this.localTimer);
    if (!this.failed) this.opts.onLocalDropped?.(err);
    this.localDroppedNow();
    this.local.destroy();
    this.release(this.local);
    if (!this.clientOn) this.abandon();
  }

  private onData(chunk: Buffer): void {
    this.received += chunk.length;
    clearTimeout(this.stallTimer);
    if (this.clientOn && !this.client.write(chunk)) this.wait(this.client);
    if (this.localOn && !this.local.write(chunk)) this.wait(this.local);
    if (this.waitingFor.size > 0) this.source.pause();
    else this.arm();
  }

  private onEnd(): void {
    if (this.received !== this.opts.length) {
      this.fail(new Error(`upstream ended after ${this.received} of ${this.opts.length} bytes`));
      return;
    }
    this.done = true;
    this.clear();
    if (this.clientOn) this.client.end();
    if (this.localOn) this.local.end();
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.failed = true;
    this.clear();
    this.opts.onUpstreamFailed?.(err);
    this.client.destroy(err);
    this.local.destroy(err);
    this.source.destroy();
  }

  /** Nobody reads any more: stop fetching. */
  private abandon(): void {
    if (this.done) return;
    this.done = true;
    this.clear();
    this.source.destroy();
  }

  private wait(sink: PassThrough): void {
    if (this.waitingFor.has(sink)) return;
    this.waitingFor.add(sink);
    sink.once('drain', () => this.release(sink));
    if (sink === this.client && this.localOn)
      // A client that reads nothing must not hold the region's copy (and everyone waiting for
      // it, a herd of pulls of the same blob) hostage: it is cut, and the copy goes on.
      this.clientTimer = setTimeout(
        () =>
          this.client.destroy(
            new Error(`the client read nothing for ${this.opts.stallTimeoutMs} ms`),
          ),
        this.opts.stallTimeoutMs,
      );
    if (sink === this.local)
      this.localTimer = setTimeout(
        () =>
          this.dropLocal(
            new Error(`local copy accepted nothing for ${this.opts.stallTimeoutMs} ms`),
          ),
        this.opts.stallTimeoutMs,
      );
  }

  private release(sink: PassThrough): void {
    if (!this.waitingFor.delete(sink)) return;
    if (sink === this.local) clearTimeout(this.localTimer);
    else clearTimeout(this.clientTimer);
    if (this.waitingFor.size === 0 && !this.done) {
      this.source.resume();
      this.arm();
    }
  }

  /** Starts the stall clock: the source owes a byte within `stallTimeoutMs`. */
  private arm(): void {
    clearTimeout(this.stallTimer);
    if (this.done) return;
    this.stallTimer = setTimeout(
      () => this.fail(new Error(`upstream sent nothing for ${this.opts.stallTimeoutMs} ms`)),
      this.opts.stallTimeoutMs,
    );
  }

  private clear(): void {
    clearTimeout(this.stallTimer);
    clearTimeout(this.localTimer);
    clearTimeout(this.clientTimer);
  }
}
