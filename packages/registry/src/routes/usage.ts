import { isValidName, OciError } from '@meridian/oci';
import type { UsageReader } from '../domain/usage-reader';
import type { AppRoute } from '../http/route-table';

/**
 * `GET /meridian/v1/usage?repository=R` (any signed-in identity, like the replication status):
 * when each tag and manifest of a repository was last pulled, how often, in every region.
 */
export function usageRoutes(usage: UsageReader | undefined): AppRoute[] {
  return [
    {
      method: 'GET',
      path: '/meridian/v1/usage',
      need: { kind: 'identity' },
      handle: async (req, res) => {
        const repository = (req.query as Record<string, unknown>).repository;
        if (typeof repository !== 'string' || !isValidName(repository))
          throw new OciError('NAME_INVALID', 'repository is not a repository name', undefined, 400);
        if (!usage)
          throw new OciError('NAME_UNKNOWN', 'pulls are not counted on this node', undefined, 404);
        res.json(await usage.repository(repository));
      },
    },
  ];
}
