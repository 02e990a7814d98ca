import { OciError } from '@meridian/oci';
import type { AppRoute } from '../http/route-table';
import { adminRouteFactory, crudAdminRoutes, type CrudAdmin } from './admin-json';

/** What the cache-rule admin API needs (implemented by @meridian/cache's CacheRules). */
export type CacheRuleAdmin = CrudAdmin;

/**
 * `/meridian/v1/admin/cache-rules[/:name]` — pull-through cache rules (ADR 0019), JSON, each
 * needing `Owner`. Rules live in the primary's store; every node serves the API.
 */
export function cacheRuleRoutes(service: CacheRuleAdmin | undefined): AppRoute[] {
  return crudAdminRoutes(
    adminRouteFactory(
      '/meridian/v1/admin/cache-rules',
      service,
      () => new OciError('NAME_UNKNOWN', 'cache rules are not served by this node', undefined, 404),
    ),
  );
}
