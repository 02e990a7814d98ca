/** Default for `readinessCheck`'s timeout: `/readyz` answers within about this long. */
export const READINESS_TIMEOUT_MS = 2000;

/**
 * A `/readyz` check that fails fast and says what failed: `name: reason`, or `name: no answer
 * within N ms` when the dependency hangs (Redis down with an offline queue, an unreachable S3).
 */
export function readinessCheck(
  name: string,
  check: () => Promise<unknown>,
  timeoutMs = READINESS_TIMEOUT_MS,
): () => Promise<void> {
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${name}: no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([
        check().catch((err: unknown) => {
          throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        }),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
}
