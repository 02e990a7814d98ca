// Resident memory of a process, from /proc/PID/status: VmRSS sampled on a timer, and VmHWM (the
// kernel's own peak) at the end. Reported in MB (10^6 bytes).
import { readFileSync } from 'node:fs';

export function readStatus(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/** Samples VmRSS every `everyMs`; `stop()` returns the samples' peak and the final VmHWM. */
export function sampleRss(pid, everyMs = 20) {
  const start = readStatus(pid);
  let peakKb = start.rssKb;
  const timer = setInterval(() => {
    try {
      peakKb = Math.max(peakKb, readStatus(pid).rssKb);
    } catch {
      // the process went away; stop() reports what was seen
    }
  }, everyMs);
  return {
    startKb: start.rssKb,
    stop() {
      clearInterval(timer);
      let hwmKb = NaN;
      try {
        const end = readStatus(pid);
        peakKb = Math.max(peakKb, end.rssKb);
        hwmKb = end.hwmKb;
      } catch {
        // gone
      }
      const MB = (kb) => (kb * 1024) / 1e6;
      return { startMB: MB(start.rssKb), peakMB: MB(peakKb), hwmMB: MB(hwmKb) };
    },
  };
}
