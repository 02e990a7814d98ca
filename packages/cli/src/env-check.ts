import { configEnvNames, NodeConfigSchema } from './config';

/** `MERIDIAN_*` variables the CLI itself reads (connections, the saved login, bootstrap). */
const CLI_VARIABLES = [
  'MERIDIAN_URL',
  'MERIDIAN_USERNAME',
  'MERIDIAN_PASSWORD',
  'MERIDIAN_CONFIG_DIR',
  'MERIDIAN_OWNER_PASSWORD',
];

/**
 * Warnings for `MERIDIAN_*` environment variables nothing reads — a typo such as
 * `MERIDIAN_AUTH_ENABLE` would otherwise be ignored silently — naming the closest real one.
 * `MERIDIAN_TEST_*` (the test harness's) are left alone.
 */
export function unknownEnvWarnings(env: NodeJS.ProcessEnv = process.env): string[] {
  const known = new Set([...configEnvNames(NodeConfigSchema).keys(), ...CLI_VARIABLES]);
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('MERIDIAN_') || name.startsWith('MERIDIAN_TEST_') || known.has(name))
      continue;
    const near = closest(name, known);
    out.push(
      `warning: environment variable ${name} is not a Meridian setting and is ignored${near ? ` (did you mean ${near}?)` : ''}`,
    );
  }
  return out;
}

function closest(name: string, known: Set<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(3, Math.floor(name.length / 5)) + 1;
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length]!;
}
