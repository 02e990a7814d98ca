import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Help, type Command, type Option } from 'commander';
import { unknownEnvWarnings } from './env-check';

/** The CLI's version: the `@meridian/cli` package's. */
export function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * What every command shares, set on the program before any command is added (commander copies
 * it to each): `--version`, help without an empty list's `(default: [])`, and a warning on
 * standard error for each `MERIDIAN_*` variable nothing reads.
 */
export function shapeProgram(program: Command): void {
  program.version(cliVersion(), '-V, --version', 'print the version');
  const help = new Help();
  program.configureHelp({
    optionDescription: (o: Option) => {
      const text = help.optionDescription(o);
      return Array.isArray(o.defaultValue) && o.defaultValue.length === 0
        ? text.replace(/ \(default: \[\]\)$/, '')
        : text;
    },
  });
  for (const w of unknownEnvWarnings()) process.stderr.write(`meridian: ${w}\n`);
}
