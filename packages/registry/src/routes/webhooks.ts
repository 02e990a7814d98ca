import { OciError } from '@meridian/oci';
import type { AppRoute } from '../http/route-table';
import { adminRouteFactory, crudAdminRoutes } from './admin-json';

/** What the webhook admin API needs (implemented by @meridian/webhooks' WebhookService). */
export interface WebhookAdmin {
  list(): Promise<unknown>;
  show(name: string): Promise<unknown>;
  /** The unmasked URL and headers (ACR's get-config). */
  config(name: string): Promise<unknown>;
  create(input: Record<string, unknown>): Promise<unknown>;
  update(name: string, input: Record<string, unknown>): Promise<unknown>;
  delete(name: string): Promise<void>;
  ping(name: string): Promise<unknown>;
  listEvents(name: string, limit?: number): Promise<unknown>;
  redeliver(name: string, id: string): Promise<unknown>;
}

const BASE = '/meridian/v1/admin/webhooks';

const NOT_CONFIGURED = (): OciError =>
  new OciError('NAME_UNKNOWN', 'webhooks are not configured on this node', undefined, 404);

/**
 * `/meridian/v1/admin/webhooks[/:name[/config|/ping|/events[/:id/redeliver]]]` — JSON, each
 * needing `Owner` on the registry. Each handler makes one call into the webhook service; errors
 * go to the node's one error writer.
 */
export function webhookRoutes(service: WebhookAdmin | undefined): AppRoute[] {
  const route = adminRouteFactory(BASE, service, NOT_CONFIGURED);
  return [
    ...crudAdminRoutes(route, true),
    route('GET', '/:name/config', 200, (s, _req, p) => s.config(p.name!)),
    route('POST', '/:name/ping', 200, (s, _req, p) => s.ping(p.name!)),
    route('GET', '/:name/events', 200, (s, req, p) => {
      const limit = typeof req.query.limit === 'string' ? Number(req.query.limit) : undefined;
      return s.listEvents(
        p.name!,
        limit !== undefined && Number.isFinite(limit) ? limit : undefined,
      );
    }),
    route('POST', '/:name/events/:id/redeliver', 202, (s, _req, p) => s.redeliver(p.name!, p.id!)),
  ];
}
