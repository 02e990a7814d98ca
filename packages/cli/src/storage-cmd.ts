import type { Command } from 'commander';
import { openStore, verifyBlobs, type VerifyProgress } from '@meridian/storage';
import { loadConfig, NodeConfigSchema, resolveNode } from './config';
import { storeOptions } from './cluster';

/** Options of `meridian storage verify`. */
export interface StorageVerifyOptions {
  /** The region's storage (a directory or s3:// URL). Default: the configured node's storage. */
  storage?: string;
  config?: string;
  region?: string;
  /** Move mismatches to `_quarantine/`. Default false (report only). */
  repair?: boolean;
  /** Read at most this many MB (10^6 bytes) per second. Default unlimited. */
  rate?: number;
}

/** Where the command writes: the report (stdout) and the progress line (stderr). */
export interface CommandIo {
  out(s: string): void;
  err(s: string): void;
  /** Whether `err` is a terminal (the progress line is then rewritten in place). */
  errIsTty?: boolean;
}

const processIo: CommandIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  errIsTty: process.stderr.isTTY,
};

/**
 * `meridian storage verify`: re-hashes every blob of one region's storage and prints each one
 * whose bytes do not match its digest; with `repair`, moves them to `_quarantine/` so they are no
 * longer served. Resolves to the exit code: 0 when every blob is sound, 1 otherwise.
 */
export async function storageVerify(
  o: StorageVerifyOptions,
  io: CommandIo = processIo,
): Promise<number> {
  if (o.rate !== undefined && !(Number.isFinite(o.rate) && o.rate > 0))
    throw new Error(`invalid --rate ${o.rate}: a positive number of MB/s`);
  const config = loadConfig(NodeConfigSchema, {
    file: o.config,
    checkRegion: o.region !== undefined,
    overrides: { region: o.region, storage: o.storage },
  });
  const location = resolveNode(config).storage;
  const store = await openStore(location, storeOptions(config));
  const started = Date.now();
  let shown = started;
  const progress = (p: VerifyProgress, last = false): void => {
    const now = Date.now();
    // A line at most every 200 ms on a terminal (rewritten in place), every 5 s in a log.
    if (!last && now - shown < (io.errIsTty ? 200 : 5000)) return;
    shown = now;
    const seconds = Math.max((now - started) / 1000, 0.001);
    const pct = p.totalBytes > 0 ? Math.floor((100 * p.bytes) / p.totalBytes) : 100;
    const line =
      `verify: ${p.blobs}/${p.totalBlobs} blobs, ${mb(p.bytes)}/${mb(p.totalBytes)} MB ` +
      `(${pct}%), ${mb(p.bytes / seconds)} MB/s, ${p.mismatches} bad`;
    io.err(io.errIsTty ? `\r${line}\x1b[K${last ? '\n' : ''}` : `${line}\n`);
  };
  try {
    const report = await verifyBlobs(store, {
      repair: o.repair,
      bytesPerSecond: o.rate === undefined ? undefined : o.rate * 1e6,
      onProgress: (p) => progress(p),
      onMismatch: (m) => {
        const fate = m.quarantined
          ? 'quarantined'
          : o.repair
            ? 'changed meanwhile, left in place'
            : 'left in place';
        io.out(`MISMATCH ${m.digest} (${m.size} bytes) holds ${m.actual}: ${fate}\n`);
      },
    });
    progress(report, true);
    for (const key of report.unrecognised) io.out(`skipped ${key}: not a blob key\n`);
    const quarantined = report.found.filter((m) => m.quarantined).length;
    io.out(
      `${report.blobs} blobs verified in ${location}: ${report.mismatches} mismatches` +
        `${o.repair ? `, ${quarantined} quarantined under _quarantine/` : ''}\n`,
    );
    return report.mismatches === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** `meridian storage …` */
export function registerStorageCommands(program: Command): void {
  const storage = program.command('storage').description("a region's storage, offline");
  storage
    .command('verify')
    .description(
      're-hash every blob of a region and report those whose bytes do not match their digest',
    )
    .option('--storage <dir|s3-url>', "the region's storage (default: the configured node's)")
    .option('--config <file>', 'configuration file (node or whole cluster)')
    .option('--region <name>', 'the region whose storage to verify (with --config)')
    .option('--repair', 'move mismatches to _quarantine/ so they are no longer served')
    .option('--rate <MB/s>', 'read at most this many MB per second', (v) => Number(v))
    .action(async (o: StorageVerifyOptions) => {
      process.exitCode = await storageVerify(o);
    });
}
