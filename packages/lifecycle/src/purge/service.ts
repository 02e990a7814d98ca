import { OciError } from '@meridian/oci';
import type { RepositoryLayout } from '@meridian/storage';
import { parseDuration, parseFilter } from './plan';
import { purge, type PurgeReport, type PurgeTarget } from './purger';

/** The admin API's purge request, as JSON. */
export interface PurgeRequest {
  filters?: unknown;
  ago?: unknown;
  notPulledFor?: unknown;
  keep?: unknown;
  untagged?: unknown;
  dryRun?: unknown;
  force?: unknown;
  maxShare?: unknown;
  includeLocked?: unknown;
}

const bad = (why: string): OciError => new OciError('UNSUPPORTED', why, undefined, 400);

/** Validates a purge request and runs it (`POST /meridian/v1/admin/purge`, `meridian purge`). */
export async function runPurge(
  layout: RepositoryLayout,
  target: PurgeTarget,
  req: PurgeRequest,
): Promise<PurgeReport> {
  const known = [
    'filters',
    'ago',
    'notPulledFor',
    'keep',
    'untagged',
    'dryRun',
    'force',
    'maxShare',
    'includeLocked',
  ];
  const unknown = Object.keys(req).find((k) => !known.includes(k));
  if (unknown) throw bad(`unknown field ${unknown.slice(0, 40)}`);
  const { filters, ago, notPulledFor, keep, untagged, dryRun, force, maxShare, includeLocked } =
    req;
  if (
    !Array.isArray(filters) ||
    filters.length === 0 ||
    filters.length > 100 ||
    !filters.every((f) => typeof f === 'string' && f.length > 0 && f.length <= 512)
  )
    throw bad('filters: one or more "REPO_REGEX:TAG_REGEX" strings are required');
  if (ago !== undefined && typeof ago !== 'string') throw bad('ago: a duration such as "30d"');
  if (notPulledFor !== undefined && typeof notPulledFor !== 'string')
    throw bad('notPulledFor: a duration such as "90d"');
  if (keep !== undefined && !(Number.isSafeInteger(keep) && (keep as number) >= 0))
    throw bad('keep: a whole number of tags');
  for (const [k, v] of Object.entries({ untagged, dryRun, force, includeLocked }))
    if (v !== undefined && typeof v !== 'boolean') throw bad(`${k}: true or false`);
  if (maxShare !== undefined && !(typeof maxShare === 'number' && maxShare > 0 && maxShare <= 1))
    throw bad('maxShare: a number in (0, 1]');
  return purge(layout, target, {
    filters: (filters as string[]).map(parseFilter),
    agoMs: ago === undefined ? undefined : parseDuration(ago, 'ago'),
    notPulledForMs:
      notPulledFor === undefined ? undefined : parseDuration(notPulledFor, 'notPulledFor'),
    keep: keep as number | undefined,
    untagged: untagged as boolean | undefined,
    force: force as boolean | undefined,
    includeLocked: includeLocked as boolean | undefined,
    maxShare: maxShare,
    dryRun: (dryRun as boolean | undefined) ?? false,
  });
}
