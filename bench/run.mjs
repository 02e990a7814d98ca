// `pnpm bench`: Meridian (fs storage, built CLI) against CNCF Distribution, side by side, in one
// run. Writes docs/benchmarks.md and prints the table. Needs `pnpm build` first, and
// docker-registry, wrk, ab (apache2-utils), curl and skopeo on PATH.
//
//   node bench/run.mjs [--quick] [--no-write] [--only=small,medium,large,shared,rates,info,usage,memory,login,events]
//
// --quick shrinks every size and duration (a smoke test; implies --no-write).
// MERIDIAN_BENCH_CLI=/path/to/packages/cli/dist/main.js benchmarks another build.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GiB, MANIFEST_ACCEPT, MiB, streamBlob } from './lib/content.mjs';
import { cpuWatch, waitForQuiet } from './lib/quiet.mjs';
import { have } from './lib/load.mjs';
import {
  cleanup,
  cleanupSync,
  DISTRIBUTION_BIN,
  MERIDIAN_CLI,
  REPO_ROOT,
  startBareNode,
  startDistribution,
  startMeridian,
  tempDir,
} from './lib/procs.mjs';
import { machineInfo, markdownTable } from './lib/report.mjs';
import { OciLayout } from './lib/skopeo.mjs';
import * as S from './scenarios.mjs';
import { buildRows, renderDoc } from './doc.mjs';

const ALL = [
  'small',
  'medium',
  'large',
  'shared',
  'rates',
  'info',
  'usage',
  'memory',
  'login',
  'events',
];
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const only = flags.only ? flags.only.split(',') : ALL;
for (const o of only)
  if (!ALL.includes(o)) throw new Error(`--only: unknown scenario ${o} (${ALL.join(', ')})`);
const write = !flags['no-write'] && !flags.quick && only.length === ALL.length;

const CONFIG = flags.quick
  ? {
      small: 10,
      skopeoSmall: 2,
      medium: 2,
      large: 64 * MiB,
      getRuns: 1,
      shared: 5,
      tags: 100,
      seconds: 3,
      huge: 128 * MiB,
    }
  : {
      small: 50,
      skopeoSmall: 5,
      medium: 4,
      large: 256 * MiB,
      getRuns: 7,
      shared: 20,
      tags: 100,
      seconds: 10,
      huge: GiB,
    };
/** Rounds of the push/pull scenarios (1, 2, 4), alternating the registries; best round kept. */
const ROUNDS = flags.quick ? 1 : 2;
const LOAD = { seconds: CONFIG.seconds, connections: 32, threads: 2 };

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping child processes and removing temp files`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', cleanupSync);

async function prerequisites() {
  const missing = [];
  if (!existsSync(MERIDIAN_CLI)) missing.push(`${MERIDIAN_CLI} (run pnpm build)`);
  if (!existsSync(DISTRIBUTION_BIN)) missing.push(`${DISTRIBUTION_BIN} (apt: docker-registry)`);
  for (const [cmd, pkg] of [
    ['wrk', 'wrk'],
    ['ab', 'apache2-utils'],
    ['curl', 'curl'],
    ['skopeo', 'skopeo'],
  ]) {
    if (!(await have(cmd))) missing.push(`${cmd} (apt: ${pkg})`);
  }
  if (missing.length) throw new Error(`missing prerequisites:\n  ${missing.join('\n  ')}`);
}

/**
 * Runs `fn(target, round)` against each registry, alternating Meridian and Distribution for
 * `rounds` rounds (the report keeps each side's best round). Waits for a quiet machine first. A
 * failure is recorded and the bench goes on.
 */
async function both(name, targets, fn, ctx, rounds = 1) {
  ctx.background[name] = await waitForQuiet({ log });
  const pids = Object.values(targets).map((t) => t.pid);
  for (let round = 0; round < rounds; round++) {
    for (const [key, target] of Object.entries(targets)) {
      log(`${name}: ${target.name}${rounds > 1 ? ` (round ${round + 1} of ${rounds})` : ''}`);
      const watch = cpuWatch(pids);
      try {
        (ctx.results[key][name] ??= []).push(await fn(target, round));
      } catch (err) {
        ctx.errors.push(
          `${name} on ${target.name}: ${err instanceof Error ? err.message : String(err)}`,
        );
        log(`  FAILED: ${ctx.errors.at(-1)}`);
      }
      const other = watch.stop();
      ctx.interference[name] = Math.max(ctx.interference[name] ?? 0, other);
      if (other > 0.1)
        log(`  other processes used ${Math.round(other * 100)} % of the CPU meanwhile`);
    }
  }
}

async function main() {
  await prerequisites();
  const started = new Date();
  const machine = machineInfo();
  const results = { m: {}, d: {} };
  const errors = [];
  const ctx = { results, errors, background: {}, interference: {} };

  const meridian = await startMeridian();
  const distribution = await startDistribution();
  const targets = { m: meridian, d: distribution };
  log(
    `meridian pid ${meridian.pid} at ${meridian.url}; distribution pid ${distribution.pid} at ${distribution.url}`,
  );

  if (only.includes('small')) {
    const p = { count: CONFIG.small, skopeoCount: CONFIG.skopeoSmall };
    await both('small', targets, (t, round) => S.smallImages(t, { ...p, round }), ctx, ROUNDS);
  }
  if (only.includes('medium')) {
    const p = { count: CONFIG.medium, layers: 2, layerSize: 8 * MiB };
    await both('medium', targets, (t, round) => S.mediumImages(t, { ...p, round }), ctx, ROUNDS);
  }
  if (only.includes('large')) {
    log(`generating a ${CONFIG.large / MiB} MiB layer and its OCI layout for skopeo`);
    const blob = streamBlob('large-layer', CONFIG.large);
    const layout = new OciLayout(tempDir('oci-large'));
    const layer = await layout.writeGzipLayer('large-layer-gz', CONFIG.large);
    layout.addImage('big', [layer]);
    const skopeoLayout = { dir: layout.dir, tag: 'big', bytes: layer.size };
    const p = { blob, skopeoLayout, getRuns: CONFIG.getRuns };
    await both('large', targets, (t) => S.largeLayer(t, p), ctx);
  }
  if (only.includes('shared')) {
    const p = { count: CONFIG.shared, baseSize: 8 * MiB };
    await both('shared', targets, (t, round) => S.sharedBase(t, { ...p, round }), ctx, ROUNDS);
  }
  if (only.includes('rates')) {
    await both('seed', targets, (t) => S.seedReadTargets(t, { tags: CONFIG.tags }), ctx);
    await both('rates', targets, (t) => S.requestRates(t, LOAD), ctx, ROUNDS);
  }
  await meridian.stop();
  await distribution.stop();

  if (only.includes('info')) {
    // The same manifest GET with Meridian's default configuration (one pino line per request,
    // to a file), and beside it, in the same rounds, a bare node:http server answering the same
    // bytes: the ceiling of one Node process on this machine.
    const info = await startMeridian({ name: 'meridian-info', logLevel: 'info' });
    let bare;
    try {
      await S.seedReadTargets(info, { tags: 1 });
      bare = await startBareNode(info, '/v2/read/app/manifests/latest', {
        Accept: MANIFEST_ACCEPT,
      });
      const get = { ...LOAD, only: ['get'] };
      await both(
        'info',
        { m: info },
        async (t) => {
          const m = await S.requestRates(t, get);
          const b = await S.requestRates(bare, get);
          return { ...m, bare: b.manifestGet, bareRatio: m.manifestGet.rps / b.manifestGet.rps };
        },
        ctx,
        ROUNDS,
      );
    } finally {
      await bare?.stop();
      await info.stop();
    }
  }

  if (only.includes('usage')) {
    // The same manifest GET with pull counting off: every other row counts pulls (the default),
    // so the two together show what counting costs a pull.
    const off = await startMeridian({
      name: 'meridian-nousage',
      env: { MERIDIAN_USAGE_ENABLED: 'false' },
    });
    try {
      await S.seedReadTargets(off, { tags: 1 });
      const get = { ...LOAD, only: ['get'] };
      await both('usage', { m: off }, (t) => S.requestRates(t, get), ctx, ROUNDS);
    } finally {
      await off.stop();
    }
  }

  if (only.includes('memory')) {
    log(`computing the digest of a ${CONFIG.huge / MiB} MiB generated layer`);
    const blob = streamBlob('huge-layer', CONFIG.huge);
    const fresh = {
      m: await startMeridian({ name: 'meridian-memory' }),
      d: await startDistribution({ name: 'distribution-memory' }),
    };
    try {
      await both('memory', fresh, (t) => S.memoryUnderLoad(t, { blob }), ctx);
    } finally {
      await fresh.m.stop();
      await fresh.d.stop();
    }
  }

  if (only.includes('login')) {
    // Meridian alone, auth on: small blob GETs while bogus logins flood it, against idle.
    const password = 'bench-owner-password';
    const auth = await startMeridian({ name: 'meridian-login', ownerPassword: password });
    try {
      const p = { seconds: CONFIG.seconds, concurrency: 100, password };
      await both('login', { m: auth }, (t) => S.loginAbuse(t, p), ctx, ROUNDS);
    } finally {
      await auth.stop();
    }
  }

  if (only.includes('events')) {
    // Meridian alone: manifest PUT latency while Redis is paused and with a hanging subscriber.
    const p = { count: CONFIG.small };
    await both('events', { m: { name: 'meridian-events' } }, (t) => S.eventLatency(t, p), ctx);
  }

  const rows = buildRows(results, CONFIG);
  const table = markdownTable(rows);
  process.stdout.write(`\n${table}\n`);
  if (errors.length) process.stdout.write(`\nErrors:\n${errors.map((e) => `- ${e}`).join('\n')}\n`);
  if (write) {
    const doc = renderDoc({
      table,
      rows,
      results,
      errors,
      machine,
      started,
      config: CONFIG,
      load: LOAD,
      ctx,
      rounds: ROUNDS,
    });
    const file = join(REPO_ROOT, 'docs', 'benchmarks.md');
    writeFileSync(file, doc);
    log(`wrote ${file}`);
  }
  return errors.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(
    `[bench] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
} finally {
  await cleanup();
}
process.exit(code);
