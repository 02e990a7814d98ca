/**
 * The one HTTP exchange every API command of the CLI makes with a node or the gateway: Basic
 * auth when there is a password, a JSON body, the answer read whole and parsed as JSON when it
 * is. Callers word their own errors (each command names its own fix).
 */
export interface ApiAnswer {
  res: Response;
  text: string;
  /** The parsed body, or undefined when it is empty or not JSON. */
  json: unknown;
}

/** Thrown when the node cannot be reached at all (no HTTP answer). */
export class ApiUnreachable extends Error {}

export async function apiRequest(
  conn: { url: string; user?: string; password?: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (conn.password)
    headers.Authorization = `Basic ${Buffer.from(`${conn.user}:${conn.password}`).toString('base64')}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${conn.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiUnreachable((err as Error).message);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { res, text, json };
}

/** The first OCI/ACR error message of an error answer (`{errors: [{message}]}`), if any. */
export function apiErrorMessage(json: unknown): string | undefined {
  return (json as { errors?: { message?: string }[] } | undefined)?.errors?.[0]?.message;
}
