import { OciError } from '@meridian/oci';

/**
 * One `/v2` query parameter, or undefined when absent. A parameter given twice (`?digest=a&
 * digest=b`, `?n=1&n=1000`) is a 400: which one counts would be the parser's choice, and another
 * parser on the way (a proxy, a gateway, a log) may choose the other. The spec has no code for
 * it; `UNSUPPORTED` says the request cannot be served as asked (ADR 0003).
 */
export function queryParam(url: URL, name: string): string | undefined {
  const all = url.searchParams.getAll(name);
  if (all.length > 1)
    throw new OciError(
      'UNSUPPORTED',
      `the ${name} query parameter is given more than once`,
      { parameter: name },
      400,
    );
  return all[0];
}
