import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { RequestInfo } from '../domain/events';
import type { Registry } from '../domain/registry';

/** What a `/v2` route handler receives: the raw request, parsed path parts and the domain. */
export interface V2Context {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Repository name (validated), when the route has one. */
  name: string;
  /** The last path parameter: reference, digest or upload id. */
  param: string;
  registry: Registry;
  /** Who is asking (actor, request id): domain events carry it. */
  request: RequestInfo;
  log: Logger;
  /** Set by handlers for the request log. */
  meta: { repository?: string; route: string };
}

export type V2Handler = (ctx: V2Context) => Promise<void>;
