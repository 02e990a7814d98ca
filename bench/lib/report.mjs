// Turning results into the comparison table (stdout and docs/benchmarks.md).
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { readFileSync } from 'node:fs';
import { MERIDIAN_ROOT, distributionVersion } from './procs.mjs';

/**
 * A row compares Meridian (`m`) with Distribution (`d`). `better` says which way is good;
 * `ratio` is oriented so that > 1 means Meridian is better (d/m for times and memory). `target`
 * is a minimum ratio, or `{ maxM }` / `{ minM }`: an absolute ceiling / floor on Meridian's figure.
 */
export function ratioOf(row) {
  if (!Number.isFinite(row.m) || !Number.isFinite(row.d) || row.m <= 0 || row.d <= 0) return NaN;
  return row.better === 'higher' ? row.m / row.d : row.d / row.m;
}

export function verdict(row) {
  if (!row.target) return '';
  if (!Number.isFinite(row.m)) return 'n/a';
  if (row.target.maxM !== undefined) return row.m < row.target.maxM ? 'met' : '**MISSED**';
  if (row.target.minM !== undefined) return row.m >= row.target.minM ? 'met' : '**MISSED**';
  const r = ratioOf(row);
  if (!Number.isFinite(r)) return 'n/a';
  if (row.target.informational) return r >= row.target.ratio ? '(met)' : '(missed)';
  return r >= row.target.ratio ? 'met' : '**MISSED**';
}

function fmt(x, unit) {
  if (x === undefined || x === null) return '—';
  if (typeof x === 'string') return x;
  if (!Number.isFinite(x)) return 'error';
  if (unit === 'req/s') return Math.round(x).toLocaleString('en-US');
  if (unit === 's') return x < 10 ? x.toFixed(3) : x.toFixed(1);
  if (unit === '×') return x.toFixed(2);
  return x < 100 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US');
}

function targetText(row) {
  if (!row.target) return '';
  return row.target.label;
}

export function markdownTable(rows) {
  const head = [
    '#',
    'Benchmark',
    'Unit',
    'Meridian',
    'Distribution',
    'Ratio (>1 = Meridian better)',
    'Target',
    'Status',
  ];
  const lines = [
    `| ${head.join(' | ')} |`,
    `|${head.map((h) => (h === 'Benchmark' ? ' --- ' : ' ---: ')).join('|')}|`,
  ];
  for (const row of rows) {
    const r = ratioOf(row);
    lines.push(
      `| ${[
        row.id,
        row.label,
        row.unit,
        fmt(row.m, row.unit),
        fmt(row.d, row.unit),
        Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a',
        targetText(row),
        verdict(row),
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machineInfo() {
  const cpu = cpus();
  let os = 'unknown';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    // not Linux
  }
  const dirty = sh('git', ['-C', MERIDIAN_ROOT, 'status', '--porcelain', '--', 'packages']);
  return {
    cores: cpu.length,
    cpu: cpu[0]?.model ?? 'unknown',
    memGiB: (totalmem() / 2 ** 30).toFixed(1),
    os,
    kernel: release(),
    node: process.version,
    loadavg: loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    distribution: distributionVersion(),
    wrk: sh('sh', ['-c', 'wrk --version 2>&1 | head -1']).replace(/ Copyright.*/, ''),
    ab: sh('sh', ['-c', "ab -V | head -1 | sed 's/This is //'"]),
    skopeo: sh('skopeo', ['--version']),
    curl: sh('sh', ['-c', 'curl --version | head -1 | cut -d" " -f1-2']),
    commit: `${sh('git', ['-C', MERIDIAN_ROOT, 'rev-parse', '--short', 'HEAD'])}${dirty && dirty !== 'unknown' ? ' (+ uncommitted changes in packages/)' : ''}`,
  };
}
