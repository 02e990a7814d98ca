import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry, type RegistryOptions } from '@meridian/registry';
import { openStore, withLatency, type ObjectStore } from '@meridian/storage';

export interface TwoNodes {
  /** The region's store directory. */
  dir: string;
  /** Each node's own handle on it. */
  stores: [ObjectStore, ObjectStore];
  a: Registry;
  b: Registry;
  close(): Promise<void>;
}

/**
 * Two nodes of one region (ADR 0024) over one fs store in a fresh directory: each its own store
 * handle (with `latencyMs` per call, to widen race windows) and registry, both knowing they share
 * the region, as `RegionNodes` would tell them. Their in-process guards cannot see each other.
 */
export async function twoNodes(
  name: string,
  opts: { latencyMs?: number; registry?: Omit<RegistryOptions, 'store'> } = {},
): Promise<TwoNodes> {
  const dir = mkdtempSync(join(tmpdir(), `meridian-${name}-`));
  const open = async () => withLatency(await openStore(dir), opts.latencyMs ?? 0);
  const stores: [ObjectStore, ObjectStore] = [await open(), await open()];
  const [a, b] = stores.map(
    (store) => new Registry({ cache: { ttlMs: 0 }, ...opts.registry, store }),
  ) as [Registry, Registry];
  a.setExclusive(() => false);
  b.setExclusive(() => false);
  return {
    dir,
    stores,
    a,
    b,
    close: async () => {
      await a.events.close();
      await b.events.close();
      for (const s of stores) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
