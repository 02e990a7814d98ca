import { OciError } from '@meridian/oci';
import type { AppRoute } from '../http/route-table';
import { adminRouteFactory, crudAdminRoutes, type CrudAdmin } from './admin-json';

/** What the credential-set admin API needs (implemented by @meridian/cache's CredentialSets). */
export type CredentialSetAdmin = CrudAdmin;

/**
 * `/meridian/v1/admin/credential-sets[/:name]` — JSON, each needing `Owner`. A set's username
 * and password go in (create, update) and never come out.
 */
export function credentialSetRoutes(service: CredentialSetAdmin | undefined): AppRoute[] {
  return crudAdminRoutes(
    adminRouteFactory(
      '/meridian/v1/admin/credential-sets',
      service,
      () =>
        new OciError(
          'NAME_UNKNOWN',
          'credential sets need upstream.credentialKey (MERIDIAN_UPSTREAM_CREDENTIAL_KEY) on this node',
          undefined,
          404,
        ),
    ),
  );
}
