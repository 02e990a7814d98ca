#!/usr/bin/env node
// Fails when a source file in packages/ grows past the limit: a file that passes ~400 lines is
// asking to be split along a seam (docs: CONVENTIONS.md, "Files stay small"). Run by `pnpm lint`.
//
// Counts lines of packages/*/src/**/*.ts, except unit tests (*.test.ts), declaration files and
// the shared storage driver suite (packages/storage/src/testsuite/), which is one conformance
// suite by design.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIMIT = 450;

/**
 * Files allowed over the limit, each with a reason and a ceiling (`max`) it must not grow past:
 * for a split in progress only, never for a new file. An entry whose file is under the limit
 * again fails the guard until it is removed, so the list only shrinks. Empty: every file fits.
 * @type {Map<string, { max: number; reason: string }>}
 */
const ALLOWED = new Map([]);

const root = join(fileURLToPath(import.meta.url), '..', '..');
const packages = join(root, 'packages');

function* sources(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name === 'testsuite')
      continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith('.ts') && !/\.(test|d)\.ts$/.test(entry.name)) yield path;
  }
}

const over = [];
const stale = [];
for (const pkg of readdirSync(packages, { withFileTypes: true })) {
  if (!pkg.isDirectory()) continue;
  let files;
  try {
    files = [...sources(join(packages, pkg.name, 'src'))];
  } catch {
    continue; // a package without src/
  }
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    const name = relative(root, file).split(sep).join('/');
    const allowed = ALLOWED.get(name);
    if (allowed && lines <= LIMIT) stale.push(name);
    if (lines > (allowed ? allowed.max : LIMIT)) over.push({ name, lines, allowed });
  }
}

for (const name of stale) {
  console.error(`check-file-size: ${name} is under ${LIMIT} lines now; remove it from ALLOWED.`);
}
if (over.length > 0) {
  console.error(`check-file-size: source files over ${LIMIT} lines (split them along a seam):`);
  for (const { name, lines, allowed } of over.sort((a, b) => b.lines - a.lines)) {
    console.error(
      `  ${String(lines).padStart(5)}  ${name}${allowed ? ` (allowed up to ${allowed.max})` : ''}`,
    );
  }
}
if (over.length > 0 || stale.length > 0) process.exit(1);
console.log(
  `check-file-size: packages/*/src files are within ${LIMIT} lines (${ALLOWED.size} allow-listed).`,
);
