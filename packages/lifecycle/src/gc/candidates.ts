import { parseDigest } from '@meridian/oci';
import { Layout, type ObjectStore } from '@meridian/storage';

/** A registry's domain event as GC reads it (structural: no import of the registry). */
export interface GcEvent {
  type: string;
  repository: string;
  digest?: string;
}

/** The part of `@meridian/registry`'s `RegistryEvents` GC plugs into. */
export interface GcEventSource {
  attach(sub: {
    name: string;
    deliver: (e: GcEvent) => Promise<void>;
  }): Promise<() => Promise<void>>;
}

/**
 * On a primary: every delete leaves a note for the next incremental GC run, in the region's own
 * store (`_gc/`): the repository whose links may now be unreferenced, and the blob that may now
 * be unlinked. A durable subscriber, so a crash between the delete and the note loses nothing;
 * in the object store, so a Redis loss loses nothing either.
 */
export async function attachGcCandidates(
  registry: { events: GcEventSource },
  store: ObjectStore,
): Promise<() => Promise<void>> {
  return registry.events.attach({
    name: 'gc',
    deliver: async (e) => {
      if (e.type !== 'manifestDeleted' && e.type !== 'blobDeleted') return;
      await store.put(Layout.gcDirty(e.repository), Buffer.alloc(0));
      if (e.digest) await store.put(Layout.gcCandidate(parseDigest(e.digest)), Buffer.alloc(0));
    },
  });
}
