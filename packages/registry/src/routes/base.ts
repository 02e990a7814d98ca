import type { V2Context } from '../http/context';
import { API_VERSION_HEADER, sendJson } from '../http/send';

/** `GET /v2/` — the API version check. */
export async function apiBase({ res }: V2Context): Promise<void> {
  sendJson(res, 200, {}, API_VERSION_HEADER);
}
