import type { V2Context } from '../http/context';
import { API_VERSION_HEADER, sendJson } from '../http/send';
import { parsePage } from '../http/pagination';

/** `GET /v2/_catalog?n=&last=` */
export async function listCatalog({ res, url, registry }: V2Context): Promise<void> {
  const { n, last } = parsePage(url);
  const page = await registry.catalog.list(n, last);
  const headers: Record<string, string> = { ...API_VERSION_HEADER };
  const lastRepo = page.repositories[page.repositories.length - 1];
  if (page.more && n !== undefined && lastRepo !== undefined)
    headers.Link = `</v2/_catalog?n=${n}&last=${encodeURIComponent(lastRepo)}>; rel="next"`;
  sendJson(res, 200, { repositories: page.repositories }, headers);
}
