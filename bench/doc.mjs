// The rows of the comparison and the generated docs/benchmarks.md.
import { ratioOf } from './lib/report.mjs';
import { MiB } from './lib/content.mjs';

const get = (o, path) => path.split('.').reduce((x, k) => (x == null ? undefined : x[k]), o);

/**
 * `results.m.small` is a list of rounds; a row's figure is the best round's (the one least
 * disturbed by anything else on the machine). Returns the figure and every round's.
 */
function pick(side, path, better) {
  const [scenario, ...rest] = path.split('.');
  const all = (side[scenario] ?? []).map((r) => get(r, rest.join('.'))).filter(Number.isFinite);
  if (!all.length) return { value: undefined, all };
  return { value: better === 'higher' ? Math.max(...all) : Math.min(...all), all };
}

/** The comparison rows, with the issue's targets. */
export function buildRows(results, C) {
  const { m, d } = results;
  const row = (id, label, unit, better, path, target, mPath = path) => {
    const mp = pick(m, mPath, better);
    const dp = pick(d, path, better);
    return {
      id,
      label,
      unit,
      better,
      m: mp.value,
      d: dp.value,
      mAll: mp.all,
      dAll: dp.all,
      target,
    };
  };
  const large = `${C.large / MiB} MiB`;
  const huge = C.huge >= 1024 * MiB ? `${C.huge / (1024 * MiB)} GiB` : `${C.huge / MiB} MiB`;
  return [
    row(
      '1',
      `Push ${C.small} small images (config + 2 × 4 KiB layers, raw HTTP, one image at a time)`,
      's',
      'lower',
      'small.pushSeconds',
      { ratio: 1.25, label: 'time ≤ 0.8× (≥ 1.25×)' },
    ),
    row(
      '1b',
      `Push ${C.skopeoSmall} small images with \`skopeo copy\` (a process each)`,
      's',
      'lower',
      'small.skopeoSeconds',
    ),
    row(
      '2',
      `Push ${C.medium} images of 2 × 8 MiB layers (raw HTTP)`,
      'MB/s',
      'higher',
      'medium.pushMBps',
    ),
    row(
      '2b',
      `Pull the same ${C.medium} images (manifest, config, layers)`,
      'MB/s',
      'higher',
      'medium.pullMBps',
    ),
    row(
      '3',
      `${large} blob GET (\`curl -o /dev/null\`, median of ${C.getRuns})`,
      'MB/s',
      'higher',
      'large.getMBps',
      {
        ratio: 1,
        label: '≥ 1.0×',
      },
    ),
    row(
      '3b',
      `${large} layer push, raw HTTP (POST, one streamed PATCH, PUT)`,
      'MB/s',
      'higher',
      'large.rawPushMBps',
      {
        ratio: 1,
        label: '≥ 1.0×',
      },
    ),
    row(
      '3c',
      `${large} layer push, \`skopeo copy\` from an OCI layout`,
      'MB/s',
      'higher',
      'large.skopeoPushMBps',
      {
        ratio: 1,
        label: '≥ 1.0×',
      },
    ),
    row(
      '4',
      `Push ${C.shared} images sharing an 8 MiB base, a repository each (mount)`,
      's',
      'lower',
      'shared.crossRepoSeconds',
    ),
    row(
      '4b',
      `Push ${C.shared} images sharing an 8 MiB base, one repository (HEAD skip)`,
      's',
      'lower',
      'shared.sameRepoSeconds',
    ),
    row('5', 'Manifest GET by tag (wrk)', 'req/s', 'higher', 'rates.manifestGet.rps', {
      ratio: 10,
      label: '≥ 10×',
    }),
    row('5b', 'Manifest HEAD by tag (ab)', 'req/s', 'higher', 'rates.manifestHead.rps', {
      ratio: 10,
      label: '≥ 10×',
    }),
    row('5c', `Tags list, ${C.tags} tags (wrk)`, 'req/s', 'higher', 'rates.tagsList.rps', {
      ratio: 5,
      label: '≥ 5×',
    }),
    row(
      '5d',
      'Manifest GET by tag (wrk), Meridian with its default configuration (log level `info`: a line per request)',
      'req/s',
      'higher',
      'rates.manifestGet.rps',
      { ratio: 10, label: '≥ 10×' },
      'info.manifestGet.rps',
    ),
    row(
      '5e',
      'Manifest GET by tag (wrk), Meridian with pull counting off (row 5 counts every pull)',
      'req/s',
      'higher',
      'rates.manifestGet.rps',
      { ratio: 10, label: '(same as 5)', informational: true },
      'usage.manifestGet.rps',
    ),
    row(
      '5f',
      'Manifest GET by tag (wrk): Meridian as in 5d ÷ a bare `node:http` server answering the same bytes, same rounds',
      '×',
      'higher',
      'none',
      { minM: 0.8, label: 'Meridian ≥ 0.8×' },
      'info.bareRatio',
    ),
    row(
      '6',
      `Peak RSS (VmHWM) of a fresh server during a ${huge} push + pull`,
      'MB',
      'lower',
      'memory.hwmMB',
      {
        maxM: 250,
        label: 'Meridian < 250 MB',
      },
    ),
    row('6b', `${huge} layer push (one streamed PATCH)`, 'MB/s', 'higher', 'memory.pushMBps'),
    row('6c', `${huge} layer pull`, 'MB/s', 'higher', 'memory.pullMBps'),
    row(
      '7',
      'Small blob GET p99 while 100 concurrent bogus logins run ÷ idle p99 (Meridian, auth on)',
      '×',
      'lower',
      'login.p99Ratio',
      { maxM: 2, label: 'Meridian ≤ 2×' },
    ),
    row(
      '8',
      'Manifest PUT p50 while Redis sleeps (`DEBUG SLEEP`) ÷ with Redis answering (Meridian, replication attached)',
      '×',
      'lower',
      'events.pausedP50Ratio',
      { maxM: 1.5, label: 'Meridian ≤ 1.5×' },
    ),
    row(
      '8b',
      'Manifest PUT p50 with a subscriber that never answers ÷ without it (Meridian, in-process node)',
      '×',
      'lower',
      'events.hangingP50Ratio',
      { maxM: 1.5, label: 'Meridian ≤ 1.5×' },
    ),
  ];
}

const n = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

function details(results, rows) {
  const out = [];
  const multi = rows.filter((r) => r.mAll.length > 1 || r.dAll.length > 1);
  if (multi.length) {
    const f = (xs) => xs.map((x) => n(x, x < 10 ? 3 : 1)).join(', ');
    out.push(
      `**Every round** (the table shows the best of each side)\n\n${multi
        .map((r) => `- ${r.id}, ${r.unit}: Meridian ${f(r.mAll)}; Distribution ${f(r.dAll)}`)
        .join('\n')}`,
    );
  }
  for (const [key, name] of [
    ['m', 'Meridian'],
    ['d', 'Distribution'],
  ]) {
    const r = results[key];
    const lines = [];
    const small = r.small?.[0];
    if (small) lines.push(`small images: ${n(small.perImageMs)} ms per image (first round)`);
    const large = r.large?.[0];
    if (large) lines.push(`blob GET runs: ${large.getRuns.map((x) => n(x)).join(', ')} MB/s`);
    const shared = r.shared?.[0];
    if (shared) {
      lines.push(
        `shared base, across repositories: ${shared.mounted} mounts, ${n(shared.crossUploadedMB)} MB uploaded; ` +
          `one repository: ${shared.skipped} blobs skipped after HEAD, ${n(shared.sameUploadedMB)} MB uploaded`,
      );
    }
    const best = (rounds) =>
      rounds?.reduce((a, b) => ((b.manifestGet?.rps ?? 0) > (a.manifestGet?.rps ?? 0) ? b : a));
    const rates = best(r.rates);
    for (const [k, label] of [
      ['manifestGet', 'manifest GET'],
      ['manifestHead', 'manifest HEAD'],
      ['tagsList', 'tags list'],
    ]) {
      const x = rates?.[k];
      if (x)
        lines.push(
          `${label}: ${x.requests} requests, latency p50 ${n(x.p50ms, 2)} ms, p99 ${n(x.p99ms, 2)} ms`,
        );
    }
    const info = best(r.info);
    if (info) {
      const warn = rates?.manifestGet?.rps;
      const rps = info.manifestGet.rps;
      const cost = Number.isFinite(warn)
        ? ` (${n((1 - rps / warn) * 100)} % fewer than at \`warn\`)`
        : '';
      lines.push(`manifest GET at log level \`info\`: ${Math.round(rps)} req/s${cost}`);
    }
    for (const round of r.info ?? []) {
      if (round.bare)
        lines.push(
          `manifest GET, Meridian (default configuration) ${Math.round(round.manifestGet.rps)} req/s beside a bare node:http server ${Math.round(round.bare.rps)} req/s in the same round: ${n(round.bareRatio, 2)}×`,
        );
    }
    const off = best(r.usage);
    if (off) {
      const on = rates?.manifestGet?.rps;
      const rps = off.manifestGet.rps;
      const cost = Number.isFinite(on) ? ` (counting on: ${n((on / rps - 1) * 100)} %)` : '';
      lines.push(`manifest GET with pull counting off: ${Math.round(rps)} req/s${cost}`);
    }
    const mem = r.memory?.[0];
    if (mem) {
      lines.push(
        `memory: RSS ${n(mem.startMB)} MB before, sampled peak ${n(mem.peakMB)} MB, VmHWM ${n(mem.hwmMB)} MB`,
      );
    }
    const login = r.login?.reduce((a, b) => (b.p99Ratio < a.p99Ratio ? b : a));
    if (login) {
      const f = login.flood.byStatus;
      lines.push(
        `small blob GET under a login flood (best round): idle p50 ${n(login.idleP50Ms, 2)} ms, ` +
          `p99 ${n(login.idleP99Ms, 2)} ms (${login.honestRequests.idle} requests); during the flood ` +
          `p50 ${n(login.loadedP50Ms, 2)} ms, p99 ${n(login.loadedP99Ms, 2)} ms ` +
          `(${login.honestRequests.loaded} requests); the flood sent ${login.flood.total} logins ` +
          `(${Math.round(login.floodPerSecond)}/s): ${f[401] ?? 0} × 401, ${f[429] ?? 0} × 429` +
          `${f.error ? `, ${f.error} errors` : ''}`,
      );
    }
    const ev = r.events?.[0];
    if (ev) {
      const one = (x) => `p50 ${n(x.p50Ms, 2)} ms, p99 ${n(x.p99Ms, 2)} ms (${x.n} PUTs)`;
      lines.push(
        `manifest PUT: Redis answering ${one(ev.normal)}; Redis asleep ${one(ev.redisPaused)}; ` +
          `in-process node ${one(ev.inProcess)}, with a hanging subscriber ${one(ev.hangingSubscriber)}`,
      );
    }
    if (lines.length) out.push(`**${name}**\n\n${lines.map((l) => `- ${l}`).join('\n')}`);
  }
  return out.join('\n\n');
}

/** The whole of docs/benchmarks.md. */
export function renderDoc({
  table,
  rows,
  results,
  errors,
  machine,
  started,
  config,
  load,
  ctx,
  rounds,
}) {
  const missed = rows.filter(
    (r) =>
      r.target &&
      !r.target.informational &&
      r.target.maxM === undefined &&
      r.target.minM === undefined &&
      !(ratioOf(r) >= r.target.ratio),
  );
  const floors = rows.filter((r) => r.target?.minM !== undefined && !(r.m >= r.target.minM));
  const ceilings = rows.filter((r) => r.target?.maxM !== undefined);
  const noisy = Object.entries(ctx.interference)
    .filter(([, v]) => v > 0.15)
    .map(([k, v]) => `${k} (${Math.round(v * 100)} %)`);
  const misses = [
    ...missed.map((r) => `row ${r.id} (${n(ratioOf(r), 2)}×, target ${r.target.label})`),
    ...floors.map((r) => `row ${r.id} (Meridian ${n(r.m, 2)}×, target ${r.target.label})`),
    ...ceilings
      .filter((r) => !(r.m < r.target.maxM))
      .map(
        (r) =>
          `row ${r.id} (${n(r.m, r.unit === '×' ? 2 : 1)} ${r.unit}, target ${r.target.label})`,
      ),
  ];
  return `# Benchmarks: Meridian against CNCF Distribution

<!-- Generated by \`pnpm bench\` (bench/run.mjs). Do not edit: rerun to refresh. -->

Generated ${started.toISOString().replace(/\.\d+Z$/, 'Z')} at commit ${machine.commit}; the run took
${Math.round((Date.now() - started.getTime()) / 1000)} s.

> **This machine has ${machine.cores} cores, shared by the client and the server.** The load
> generators (wrk, ab, curl, skopeo and the bench's node client) run on the same cores as the
> registry under test, so absolute req/s and MB/s are below what a dedicated server would show,
> and a CPU-hungry client takes CPU from the server. The ratios are the figures to read.

## Results

Ratio: Meridian ÷ Distribution for rates, Distribution ÷ Meridian for times and memory, so
**above 1 means Meridian is better**. MB = 10^6 bytes.

${table}

${misses.length ? `Targets missed: ${misses.join('; ')}.` : 'All targets met.'}
${noisy.length ? `\nOther processes used more than 15 % of the CPU during: ${noisy.join(', ')}; those figures are less certain than the rest (see How it is measured).\n` : ''}
${errors.length ? `\nErrors during the run (the affected cells read "—"):\n\n${errors.map((e) => `- ${e}`).join('\n')}\n` : ''}
## Details

${details(results, rows)}

## Machine

- CPU: ${machine.cores} × ${machine.cpu}; ${machine.memGiB} GiB RAM; ${machine.os}, Linux ${machine.kernel}
- Node.js ${machine.node}; load average at the start ${machine.loadavg}
- CNCF Distribution: \`${machine.distribution}\` (Debian package \`docker-registry\`)
- Clients: ${machine.wrk}; ${machine.ab}; ${machine.skopeo}; ${machine.curl}

## How it is measured

- Both registries run as child processes on fresh temporary directories, on loopback:
  Meridian as \`node packages/cli/dist/main.js serve --storage DIR\` (filesystem storage) with
  \`MERIDIAN_LOG_LEVEL=warn\`, so no per-request log lines; Distribution with the Debian
  package's settings (filesystem storage, in-memory blob descriptor cache, deletes enabled), log
  level \`error\` and its access log disabled. Row 5d repeats the manifest GET against a fresh
  Meridian at the default \`info\` level (one JSON line per request, written to a file): its
  default configuration. Row 5f measures, in each of the same rounds, a bare \`node:http\` server
  (bench/lib/bare-server.mjs, its own process) answering every request with the bytes and
  headers Meridian sent for that manifest, and gives Meridian's req/s over the bare server's
  (best round): how close the registry comes to what one Node process can do.
- Each scenario runs against Meridian, then against Distribution. Pushes and pulls use one
  node:http client with a keep-alive agent for both registries: per blob a \`HEAD\`, then a
  cross-repository mount when the client knows another repository holding it, else \`POST\` and
  \`PUT\` with the body (small blobs) or \`POST\`, one streamed \`PATCH\`, \`PUT\` (large ones);
  an image's blobs go in parallel, then its manifest. Blob content is random (incompressible)
  and the large layers are generated on the fly, never held in memory.
- Scenarios 1, 2, 4 and 5 run ${rounds} rounds, alternating Meridian and Distribution; the table
  keeps each side's best round (all rounds are under Details). This machine is shared with other
  work: before each scenario the bench waits up to 60 s for other processes to use less than
  15 % of the CPU, and it measures what they used while it ran (worst round, share of both
  cores): ${Object.entries(ctx.interference)
    .map(([k, v]) => `${k} ${Math.round(v * 100)} %`)
    .join(', ')}.
- 1: ${config.small} images, each in its own repository, pushed one after the other after one
  warm-up image; 1b: \`skopeo copy oci:… docker://…\` of ${config.skopeoSmall} small images
  (gzip layers), one process each, so mostly skopeo's own start-up.
- 3: the ${config.large / MiB} MiB blob is read ${config.getRuns} times with \`curl -o /dev/null\`; 3c
  pushes a gzip (stored) layer of the same size so skopeo keeps it as it is.
- 5: \`wrk -t${load.threads} -c${load.connections} -d${load.seconds}s\` with an OCI/Docker manifest
  \`Accept\` header; HEAD with \`ab -k -c${load.connections} -t${load.seconds} -i\`, because wrk 4.1 waits
  for the body a HEAD response's \`Content-Length\` announces and never completes a request (ab is
  single-threaded, so compare 5b's two columns with each other, not with 5's). Any non-2xx answer
  or socket error fails the scenario.
- 7: a fresh Meridian with auth on (the others run with it off). One client GETs a 100-byte
  blob in a loop, one request at a time, with Basic credentials (verified once, then
  remembered), for ${config.seconds} s idle, then for ${config.seconds} s while a separate process keeps 100
  logins in flight, each for an unknown username from a new X-Forwarded-For address (a botnet
  behind the gateway: no per-address or per-identity limit applies, only the bound on the KDF
  pool). The figure is the p99 during the flood ÷ the idle p99.
- 6: fresh servers; the layer is pushed and pulled while \`/proc/PID/status\` is sampled every
  20 ms; the figure is the kernel's \`VmHWM\` (peak resident set since the process started).

## Reproduce

\`\`\`sh
apt-get install docker-registry wrk apache2-utils skopeo curl
pnpm install --frozen-lockfile && pnpm build
pnpm bench                                 # about 3 minutes; rewrites this file
node bench/run.mjs --quick                 # smoke test, smaller sizes, writes nothing
node bench/run.mjs --only=rates --no-write # one scenario
node bench/profile.mjs                     # CPU profile of Meridian under the manifest GET load
\`\`\`
`;
}
