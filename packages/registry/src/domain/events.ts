/**
 * Domain events: every committed change on a node. Replication, webhooks and caches subscribe;
 * handlers never enqueue work themselves. Listeners run after the change is durable.
 */
export type RegistryEvent =
  | { type: 'blobCommitted'; repository: string; digest: string; size: number; at: number }
  /** `from` is '' for an automatic mount (no source repository named). */
  | { type: 'blobMounted'; repository: string; digest: string; from: string; at: number }
  | {
      type: 'manifestPut';
      repository: string;
      digest: string;
      mediaType: string;
      subject?: string;
      at: number;
    }
  | { type: 'tagMoved'; repository: string; tag: string; digest: string; seq: number; at: number }
  | { type: 'manifestDeleted'; repository: string; digest: string; at: number }
  | { type: 'tagDeleted'; repository: string; tag: string; at: number }
  | { type: 'blobDeleted'; repository: string; digest: string; at: number };

export type RegistryListener = (event: RegistryEvent) => void | Promise<void>;

/** A minimal typed event bus. Listener errors are reported, never thrown into the request. */
export class RegistryEvents {
  private readonly listeners: RegistryListener[] = [];
  constructor(private readonly onError: (err: unknown, event: RegistryEvent) => void = () => {}) {}

  subscribe(listener: RegistryListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Delivers to every listener; awaits async listeners so callers can order side effects. */
  async emit(event: RegistryEvent): Promise<void> {
    for (const l of this.listeners) {
      try {
        await l(event);
      } catch (err) {
        this.onError(err, event);
      }
    }
  }
}
