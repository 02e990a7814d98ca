import { isValidName, OciError } from '@meridian/oci';
import type { AppRoute } from '../http/route-table';

/** What the GC admin API needs (implemented by @meridian/lifecycle's GcService, wired by the CLI). */
export interface GcAdmin {
  /** Runs GC of a region now; resolves to its report. Rejects with an `OciError` for a bad request. */
  run(req: {
    region?: string;
    mode?: 'full' | 'incremental';
    dryRun?: boolean;
    graceSeconds?: number;
  }): Promise<unknown>;
  /** The last runs of every region, newest first. */
  history(): Promise<unknown[]>;
  /** Per region: last success, what it freed, a later failure. */
  regions(): Promise<unknown[]>;
}

const NOT_CONFIGURED = (): OciError =>
  new OciError('NAME_UNKNOWN', 'garbage collection is not run from this node', undefined, 404);

const badBody = (why: string): OciError =>
  new OciError(
    'UNSUPPORTED',
    `${why}; the body is {"region": "name", "mode": "full"|"incremental", "dryRun": true|false, "graceSeconds": n} (all optional)`,
    undefined,
    400,
  );

/**
 * `POST /meridian/v1/admin/gc` runs garbage collection of a region and answers its report once
 * it has finished; `GET /meridian/v1/admin/gc` lists the last runs (both `Owner` only);
 * `GET /meridian/v1/gc/regions` summarises each region for the dashboard.
 */
export function gcRoutes(gc: GcAdmin | undefined): AppRoute[] {
  return [
    {
      method: 'POST',
      path: '/meridian/v1/admin/gc',
      need: { kind: 'admin' },
      body: 'json',
      handle: async (req, res) => {
        const b: unknown = req.body ?? {};
        if (typeof b !== 'object' || b === null || Array.isArray(b)) throw badBody('not an object');
        const { region, mode, dryRun, graceSeconds, ...rest } = b as Record<string, unknown>;
        if (Object.keys(rest).length > 0)
          throw badBody(`unknown field ${Object.keys(rest)[0]!.slice(0, 40)}`);
        if (region !== undefined && (typeof region !== 'string' || !isValidName(region)))
          throw badBody('region is not a region name');
        if (mode !== undefined && mode !== 'full' && mode !== 'incremental')
          throw badBody('mode is not "full" or "incremental"');
        if (dryRun !== undefined && typeof dryRun !== 'boolean')
          throw badBody('dryRun is not a boolean');
        if (
          graceSeconds !== undefined &&
          !(
            typeof graceSeconds === 'number' &&
            Number.isSafeInteger(graceSeconds) &&
            graceSeconds >= 0
          )
        )
          throw badBody('graceSeconds is not a whole number of seconds');
        if (!gc) throw NOT_CONFIGURED();
        res.json(await gc.run({ region, mode, dryRun, graceSeconds }));
      },
    },
    {
      // The dashboard's view: for any signed-in identity, like the replication status.
      method: 'GET',
      path: '/meridian/v1/gc/regions',
      need: { kind: 'identity' },
      handle: async (_req, res) => {
        if (!gc) throw NOT_CONFIGURED();
        res.json({ regions: await gc.regions() });
      },
    },
    {
      method: 'GET',
      path: '/meridian/v1/admin/gc',
      need: { kind: 'admin' },
      handle: async (_req, res) => {
        if (!gc) throw NOT_CONFIGURED();
        res.json({ runs: await gc.history() });
      },
    },
  ];
}
