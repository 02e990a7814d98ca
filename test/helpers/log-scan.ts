/**
 * Every log line the integration suites' nodes write, and every secret the suites create, go
 * to one directory per run (`MERIDIAN_TEST_LOG_DIR`, made by global-setup); global-teardown
 * scans the lines for the secrets and for anything shaped like a JWT, and fails the run (and
 * `.ci/run`) if one appears. A secret in a log is a defect wherever it comes from.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';

function dir(): string | undefined {
  return process.env.MERIDIAN_TEST_LOG_DIR;
}

/** Where a node started by this test worker appends its log lines (for a config's `log.file`). */
export function testLogFile(): string | undefined {
  const d = dir();
  return d ? join(d, `worker-${process.pid}.log`) : undefined;
}

/**
 * A logger for an in-process node: at `info` into this worker's log file (so the scan sees
 * it), and to stderr as well when `MERIDIAN_TEST_LOG` asks for it.
 */
export function testLogger(): Logger {
  const file = testLogFile();
  const level = process.env.MERIDIAN_TEST_LOG ?? 'info';
  if (!file) return pino({ level: process.env.MERIDIAN_TEST_LOG ?? 'silent' });
  const streams: pino.StreamEntry[] = [
    { level: 'info', stream: pino.destination({ dest: file, sync: true, mkdir: true }) },
  ];
  if (process.env.MERIDIAN_TEST_LOG)
    streams.push({ level: level as pino.Level, stream: process.stderr });
  return pino({ level: process.env.MERIDIAN_TEST_LOG ? level : 'info' }, pino.multistream(streams));
}

/** Remembers a password or token a test created, for the scan. */
export function noteSecret(secret: string | undefined): void {
  const d = dir();
  if (!d || !secret || secret.length < 8) return;
  mkdirSync(d, { recursive: true });
  appendFileSync(join(d, 'secrets.txt'), `${secret}\n`);
}

const SECRET_KEYS = new Set(['password', 'token', 'access_token', 'refresh_token']);

/** Notes every secret-looking field of an API response body (passwords, tokens). */
export function noteSecretsIn(body: unknown): void {
  if (typeof body !== 'object' || body === null) return;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (typeof v === 'string' && SECRET_KEYS.has(k) && v.length >= 16) noteSecret(v);
    else if (typeof v === 'object') noteSecretsIn(v);
  }
}

const JWT = /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}/;

export interface ScanResult {
  files: number;
  lines: number;
  secrets: number;
  leaks: string[];
}

/** Scans the run's log files for the noted secrets and for JWTs. */
export function scanLogs(d: string): ScanResult {
  let secrets: string[] = [];
  try {
    secrets = [
      ...new Set(readFileSync(join(d, 'secrets.txt'), 'utf8').split('\n').filter(Boolean)),
    ];
  } catch {
    // no secret was noted
  }
  const leaks: string[] = [];
  let files = 0;
  let lines = 0;
  for (const f of readdirSync(d).filter((n) => n.endsWith('.log'))) {
    files++;
    for (const line of readFileSync(join(d, f), 'utf8').split('\n')) {
      if (!line) continue;
      lines++;
      const secret = secrets.find((s) => line.includes(s));
      if (secret || JWT.test(line)) {
        // Say where, without repeating the secret in the CI output.
        const shown = (secret ? line.split(secret).join('<secret>') : line).replace(
          new RegExp(JWT.source, 'g'),
          '<jwt>',
        );
        leaks.push(`${f}: ${shown.slice(0, 300)}`);
      }
    }
  }
  const result = { files, lines, secrets: secrets.length, leaks };
  writeFileSync(join(d, 'scan.json'), JSON.stringify(result, null, 2));
  return result;
}
