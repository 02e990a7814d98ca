/**
 * `meridian webhook create|update|show|list|delete|ping|list-events|redeliver` — clients of a
 * node's admin API (`/meridian/v1/admin/webhooks`), with the connection options of the other
 * admin commands (`--url`, `--user`, `--password`, `--password-stdin`).
 */
import type { Command } from 'commander';
import { AdminApiError, call, sub } from './admin-client';

const BASE = '/meridian/v1/admin/webhooks';
const enc = encodeURIComponent;
const id = (c: Command) => c;
const collect = (v: string, prev: string[]) => [...prev, v];
const list = (v: string, prev: string[] = []) => [...prev, ...v.split(/[\s,]+/).filter(Boolean)];

interface DefinitionOpts {
  uri?: string;
  actions?: string[];
  scope?: string;
  header: string[];
  status?: string;
  location?: string;
  format?: string;
  regions?: string[];
  secret?: string;
}

/** `Name=value` (or `Name: value`) → a header entry. */
export function parseHeader(v: string): [string, string] {
  const m = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(v);
  if (!m) throw new AdminApiError(`invalid --header ${v.split(/[=:]/)[0]}: NAME=VALUE`);
  return [m[1]!, m[2]!];
}

/** The request body of create/update: only the options given. */
export function definitionBody(o: DefinitionOpts): Record<string, unknown> {
  return {
    url: o.uri,
    actions: o.actions,
    scope: o.scope,
    headers: o.header.length > 0 ? Object.fromEntries(o.header.map(parseHeader)) : undefined,
    status: o.status,
    location: o.location,
    format: o.format,
    regions: o.regions,
    secret: o.secret,
  };
}

function definitionOptions(c: Command): Command {
  return c
    .option('--uri <url>', 'where to POST the events (http or https)')
    .option(
      '--actions <list>',
      'push, delete, tag_delete, replicated, … (comma-separated or repeated)',
      list,
    )
    .option(
      '--scope <scope>',
      'repo:tag, repo:* or repo (= repo:latest), with globs (team-a/**:v*); empty = everything',
    )
    .option(
      '--header <name=value>',
      'a custom header sent with every event (repeatable)',
      collect,
      [],
    )
    .option('--status <status>', 'enabled or disabled')
    .option('--location <region>', 'global, or a region: fire once that region serves the change')
    .option('--format <format>', 'acr (default), cloudevents or distribution')
    .option(
      '--regions <list>',
      'replicated: the regions that must serve the image (default: every region)',
      list,
    )
    .option('--secret <secret>', 'the signing secret (default: generated, shown once)');
}

export function registerWebhookCommands(program: Command): void {
  const webhook = program
    .command('webhook')
    .description('webhooks: signed, retried HTTP notifications of pushes, deletes and replication');
  sub<DefinitionOpts>(
    webhook,
    'create <name>',
    'create a webhook; its signing secret is shown once',
    definitionOptions,
    ([name], o) => {
      if (!o.uri) throw new AdminApiError('--uri is required');
      return call(o, 'POST', BASE, { name, ...definitionBody(o) });
    },
  );
  sub<DefinitionOpts & { rotateSecret?: boolean }>(
    webhook,
    'update <name>',
    'change a webhook (only the options given)',
    (c) =>
      definitionOptions(c).option(
        '--rotate-secret',
        'a new secret (shown once); the old one still signs, second, until the next rotation',
      ),
    ([name], o) =>
      call(o, 'PATCH', `${BASE}/${enc(name!)}`, {
        ...definitionBody(o),
        rotateSecret: o.rotateSecret ? true : undefined,
      }),
  );
  sub<{ config?: boolean }>(
    webhook,
    'show <name>',
    'show a webhook (URL and headers masked; --config shows them)',
    (c) => c.option('--config', 'show the full URL and custom headers (ACR get-config)'),
    ([name], o) => call(o, 'GET', `${BASE}/${enc(name!)}${o.config ? '/config' : ''}`),
  );
  sub(webhook, 'list', 'list webhooks', id, (_a, o) => call(o, 'GET', BASE));
  sub(webhook, 'delete <name>', 'delete a webhook and its history', id, ([name], o) =>
    call(o, 'DELETE', `${BASE}/${enc(name!)}`),
  );
  sub(webhook, 'ping <name>', 'send a ping event now and show the answer', id, ([name], o) =>
    call(o, 'POST', `${BASE}/${enc(name!)}/ping`),
  );
  sub<{ limit: string }>(
    webhook,
    'list-events <name>',
    'recent deliveries, newest first: state, attempts, request and response',
    (c) => c.option('--limit <n>', 'at most this many', '50'),
    ([name], o) => call(o, 'GET', `${BASE}/${enc(name!)}/events?limit=${enc(o.limit)}`),
  );
  sub(webhook, 'redeliver <name> <id>', 'send a delivery again', id, ([name, delivery], o) =>
    call(o, 'POST', `${BASE}/${enc(name!)}/events/${enc(delivery!)}/redeliver`),
  );
}
