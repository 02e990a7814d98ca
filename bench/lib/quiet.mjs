// The machine is shared: other processes' CPU use skews a benchmark on 2 cores. Before each
// scenario the bench waits (a bounded time) for the machine to be quiet and records how busy it
// was, so the report can say how clean the figures are.
import { readFileSync } from 'node:fs';

function cpuTimes() {
  const f = /^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))[1].split(/\s+/).map(Number);
  const idle = f[3] + (f[4] ?? 0); // idle + iowait
  const total = f.reduce((a, b) => a + b, 0);
  return { idle, total };
}

/** Fraction (0..1) of all cores busy over `ms`. */
export async function cpuBusy(ms = 1000) {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}

/**
 * Waits until less than `threshold` of the CPU is busy (measured over 1 s), for at most
 * `maxWaitMs`. Returns the last measurement.
 */
export async function waitForQuiet({ threshold = 0.15, maxWaitMs = 60_000, log = () => {} } = {}) {
  const deadline = Date.now() + maxWaitMs;
  let busy = await cpuBusy();
  let told = false;
  while (busy >= threshold && Date.now() < deadline) {
    if (!told)
      log(
        `machine busy (${Math.round(busy * 100)} % CPU by other processes); waiting up to ${maxWaitMs / 1000} s`,
      );
    told = true;
    busy = await cpuBusy();
  }
  return busy;
}
