// `pnpm bench:events` (issue 11): the durable event dispatcher (ADR 0010) on its own, in this
// process — an fsynced journal on disk as a node has, and subscribers whose delivery takes a
// set time (as a Redis round trip or an HTTP call would).
//
//   node bench/events-dispatcher.mjs [--quick] [--events=N] [--repositories=R] [--out=FILE]
//
// 1. Throughput: N events (default 20 000) over R repositories (default 64) appended as fast as
//    the journal takes them; events/s until the subscriber's offset reaches the last one, for a
//    delivery of 0 ms (the dispatcher's own cost), 1 ms and 5 ms, with `order: partition` (each
//    repository in order, 16 at a time: ADR 0010's per-repository parallel delivery) and with
//    `order: global` (one at a time in commit order, the behaviour before that change).
// 2. Latency: 500 events/s for 4 s; the time from `append` to the subscriber being handed the
//    event (p50 / p99), same orders and delivery times.
// Prints JSON; with --out, a Markdown table too. Needs `pnpm build`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MERIDIAN_ROOT } from './lib/procs.mjs';

const { EventDispatcher, EventJournal } = await import(
  join(MERIDIAN_ROOT, 'packages/registry/dist/index.js')
);

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    events: { type: 'string' },
    repositories: { type: 'string' },
    out: { type: 'string' },
  },
});
const EVENTS = Number(flags.events ?? (flags.quick ? 2000 : 20_000));
const REPOS = Number(flags.repositories ?? 64);
const RATE = 500;
const RATE_SECONDS = flags.quick ? 1 : 4;
const DELIVERY_MS = [0, 1, 5];

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 100) / 100;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A journal in its own temp directory, a dispatcher over it, and one subscriber. */
async function setup(order, deliveryMs, onDeliver) {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-bench-events-'));
  const journal = await EventJournal.open({ dir: join(dir, 'journal') });
  const dispatcher = new EventDispatcher(journal, {
    offsetsDir: join(dir, 'offsets'),
    partition: (e) => e.repository,
  });
  const detach = await dispatcher.attach({
    name: 'bench',
    order,
    deliver: (e) => {
      onDeliver(e);
      return deliveryMs > 0 ? sleep(deliveryMs) : undefined;
    },
  });
  return {
    journal,
    dispatcher,
    append: (i) =>
      journal.append((sequence) => ({
        sequence,
        type: 'manifestPut',
        repository: `bench/repo-${i % REPOS}`,
        at: Date.now(),
      })),
    acknowledged: () => dispatcher.acknowledged().bench ?? 0,
    close: async () => {
      await detach();
      await dispatcher.close();
      await journal.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function throughput(order, deliveryMs) {
  // One at a time with a delivery that waits would take minutes: a tenth of the events there.
  const events = order === 'global' && deliveryMs > 0 ? Math.ceil(EVENTS / 10) : EVENTS;
  let delivered = 0;
  const s = await setup(order, deliveryMs, () => delivered++);
  const t0 = performance.now();
  const durable = [];
  for (let i = 0; i < events; i++) {
    durable.push(s.append(i).durable);
    if (durable.length >= 256) await Promise.all(durable.splice(0)); // as concurrent pushes do
  }
  await Promise.all(durable);
  const appended = performance.now() - t0;
  const last = s.journal.last;
  while (s.acknowledged() < last) await sleep(5);
  const seconds = (performance.now() - t0) / 1000;
  await s.close();
  return {
    order,
    deliveryMs,
    events,
    delivered,
    appendSeconds: Math.round(appended) / 1000,
    seconds: Math.round(seconds * 1000) / 1000,
    eventsPerSecond: Math.round(events / seconds),
  };
}

async function latency(order, deliveryMs) {
  const appendedAt = new Map();
  const ms = [];
  const s = await setup(order, deliveryMs, (e) => {
    const t = appendedAt.get(e.sequence);
    if (t !== undefined) ms.push(performance.now() - t);
  });
  const n = RATE * RATE_SECONDS;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const at = performance.now();
    const { entry } = s.append(i);
    appendedAt.set(entry.sequence, at);
  }
  while (s.acknowledged() < n) await sleep(5);
  await s.close();
  return {
    order,
    deliveryMs,
    events: n,
    ratePerSecond: RATE,
    p50Ms: quantile(ms, 0.5),
    p99Ms: quantile(ms, 0.99),
  };
}

const results = { throughput: [], latency: [], loadAverage: [] };
for (const d of DELIVERY_MS)
  for (const order of ['partition', 'global']) {
    results.throughput.push(await throughput(order, d));
    results.latency.push(await latency(order, d));
  }
results.loadAverage = loadavg().map((x) => Math.round(x * 100) / 100);
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
if (flags.out) {
  const rows = [
    `| delivery takes | order | events/s (events, over ${REPOS} repositories) | latency append → subscriber at ${RATE}/s (p50 / p99) |`,
    '| --- | --- | --- | --- |',
  ];
  for (const t of results.throughput) {
    const l = results.latency.find((x) => x.order === t.order && x.deliveryMs === t.deliveryMs);
    rows.push(
      `| ${t.deliveryMs} ms | ${t.order} | ${t.eventsPerSecond} (${t.events}) | ${l.p50Ms} ms / ${l.p99Ms} ms |`,
    );
  }
  rows.push('', `Load average at the end: ${results.loadAverage.join(' ')}.`);
  writeFileSync(flags.out, `${rows.join('\n')}\n`);
}
