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

function ticks(statFile) {
  // Fields after the command name: utime is the 14th field overall, stime 15th, cutime 16th, cstime 17th.
  const s = readFileSync(statFile, 'utf8');
  const f = s
    .slice(s.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return { self: f[11] + f[12], children: f[13] + f[14] };
}

/**
 * CPU accounting for one measurement: how much of the machine processes other than this bench
 * (itself, the children it waited for, and the live servers `pids`) used meanwhile.
 */
export function cpuWatch(pids) {
  const snap = () => {
    const { idle, total } = cpuTimes();
    const me = ticks('/proc/self/stat');
    let ours = me.self + me.children;
    for (const pid of pids) {
      try {
        ours += ticks(`/proc/${pid}/stat`).self;
      } catch {
        // exited: its time is now in our children's
      }
    }
    return { busy: total - idle, total, ours };
  };
  const a = snap();
  return {
    /** Fraction (0..1) of all cores used by other processes since the watch began. */
    stop() {
      const b = snap();
      const total = b.total - a.total;
      return total > 0 ? Math.max(0, (b.busy - a.busy - (b.ours - a.ours)) / total) : 0;
    },
  };
}
