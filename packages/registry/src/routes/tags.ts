import type { V2Context } from '../http/context';
import { API_VERSION_HEADER, sendJson } from '../http/send';
import { parsePage } from '../http/pagination';

/** `GET /v2/<name>/tags/list?n=&last=` — sorted, paginated with a `Link` header. */
export async function listTags({ res, url, name, registry }: V2Context): Promise<void> {
  const { n, last } = parsePage(url);
  const page = await registry.tags.list(name, n, last);
  const headers: Record<string, string> = { ...API_VERSION_HEADER };
  const lastTag = page.tags[page.tags.length - 1];
  if (page.more && n !== undefined && lastTag !== undefined)
    headers.Link = `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(lastTag)}>; rel="next"`;
  sendJson(res, 200, { name, tags: page.tags }, headers);
}
