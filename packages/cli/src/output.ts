/**
 * Output like `az`'s `--output`: `table` (the default: columns for humans), `json`, `yaml`, or
 * `tsv` (values only, tab-separated, one row per item, for scripts).
 */
import { stringify } from 'yaml';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml', 'tsv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputFormat(v: string | undefined): OutputFormat {
  const f = v ?? 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(f))
    throw new Error(`--output ${f}: use one of ${OUTPUT_FORMATS.join(', ')}`);
  return f as OutputFormat;
}

/** A column of a table: its header and how to read it from an item. */
export type Column = [header: string, get: (item: Record<string, unknown>) => unknown];

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map(cell).join(', ');
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(rows[0]!), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join(
    '\n',
  );
}

/**
 * Formats `value` (an item, a list of items, or a list of strings). `columns` shape the table
 * (and the order of tsv values); without them an object prints as KEY/VALUE rows.
 */
export function render(value: unknown, format: OutputFormat, columns?: Column[]): string {
  if (format === 'json') return JSON.stringify(value, null, 2);
  if (format === 'yaml') return stringify(value).trimEnd();
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  if (list.every((x) => typeof x !== 'object' || x === null)) {
    const values = list.map(cell);
    return format === 'tsv' ? values.join('\n') : table([['Result'], ...values.map((v) => [v])]);
  }
  const items = list as Record<string, unknown>[];
  if (!columns) {
    if (format === 'tsv') return items.map((i) => Object.values(i).map(cell).join('\t')).join('\n');
    if (items.length === 1)
      return table([['KEY', 'VALUE'], ...Object.entries(items[0]!).map(([k, v]) => [k, cell(v)])]);
    columns = Object.keys(items[0] ?? {}).map((k): Column => [k, (i) => i[k]]);
  }
  const rows = items.map((i) => columns.map(([, get]) => cell(get(i))));
  if (format === 'tsv') return rows.map((r) => r.join('\t')).join('\n');
  return table([columns.map(([h]) => h), ...rows]);
}
