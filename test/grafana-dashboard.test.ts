import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { register } from 'prom-client';
// Importing the packages defines every metric they export (one module per package).
import '@meridian/gateway';
import '@meridian/lifecycle';
import '@meridian/registry';
import '@meridian/replication';
import '@meridian/storage';

const ROOT = resolve(__dirname, '..');
const DEPLOY = join(ROOT, 'deploy');
/** Series Prometheus makes itself. */
const PROMETHEUS_OWN = new Set(['up']);

/** Metric-like names in a PromQL expression or rules text: `meridian_*` and `level:meridian_*:op`. */
function metricNames(text: string): string[] {
  const withoutStrings = text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const tokens = withoutStrings.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return tokens.filter(
    (t) => /^([a-z_]+:)?meridian[_:][a-z0-9_:]*$/.test(t) || PROMETHEUS_OWN.has(t),
  );
}

/** Every PromQL string in a Grafana dashboard: panel targets and template variable queries. */
function dashboardQueries(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) dashboardQueries(n, out);
  else if (node && typeof node === 'object')
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'expr' || k === 'definition') && typeof v === 'string') out.push(v);
      else if (k === 'query' && typeof v === 'string') out.push(v);
      else dashboardQueries(v, out);
    }
  return out;
}

async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>(PROMETHEUS_OWN);
  for (const m of await register.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram')
      for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
    if (String(m.type) === 'summary')
      for (const s of ['_sum', '_count']) names.add(`${m.name}${s}`);
  }
  return names;
}

const ruleFiles = readdirSync(join(DEPLOY, 'prometheus/rules'))
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join('deploy/prometheus/rules', f));
const recorded = new Set(
  ruleFiles.flatMap((f) =>
    [...readFileSync(join(ROOT, f), 'utf8').matchAll(/^\s*-?\s*record:\s*(\S+)\s*$/gm)].map(
      (m) => m[1]!,
    ),
  ),
);
const dashboards = readdirSync(join(DEPLOY, 'grafana/dashboards'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => join('deploy/grafana/dashboards', f));

describe('Grafana dashboards and Prometheus rules use only metrics the code exports', () => {
  let exported: Set<string>;
  beforeAll(async () => {
    exported = await exportedNames();
  });

  it('collects the exported names and the recording rules', () => {
    expect(exported).toContain('meridian_replication_lag_seconds_bucket');
    expect(exported).toContain('meridian_gateway_region_up');
    expect(recorded).toContain('region:meridian_replication_lag_seconds:p99_5m');
    expect(
      metricNames('sum by (region) (rate(meridian_x_total{region=~"a|meridian_y"}[5m]))'),
    ).toEqual(['meridian_x_total']);
  });

  it.each(ruleFiles)('%s', (file) => {
    const used = metricNames(readFileSync(join(ROOT, file), 'utf8'));
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((n) => !exported.has(n) && !recorded.has(n))).toEqual([]);
  });

  it.each(dashboards)('%s', (file) => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as {
      uid?: string;
      panels?: unknown[];
    };
    expect(dashboard.uid).toBeTruthy();
    const queries = dashboardQueries(dashboard.panels).concat(
      dashboardQueries((dashboard as { templating?: unknown }).templating),
    );
    expect(queries.length).toBeGreaterThan(10);
    const used = new Set(queries.flatMap(metricNames));
    expect([...used].filter((n) => !exported.has(n) && !recorded.has(n))).toEqual([]);
    // Views per region: every replication query is filtered by the region variable.
    for (const q of queries.filter((x) => x.includes('meridian_') && x.includes('{')))
      expect(q).toMatch(/region=~"\$region"/);
  });
});
