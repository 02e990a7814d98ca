/**
 * `meridian cache create|update|show|list|delete` — pull-through cache rules (ADR 0019), clients
 * of a node's admin API (`/meridian/v1/admin/cache-rules`).
 */
import type { Command } from 'commander';
import { call, sub } from './admin-client';

const BASE = '/meridian/v1/admin/cache-rules';
const enc = encodeURIComponent;
const num = (v: string) => Number(v);

interface RuleOpts {
  source?: string;
  target?: string;
  credentialSet?: string;
  tagTtl?: number;
  concurrency?: number;
  rate?: number;
}

/** The body of create/update: only the options given. */
export function ruleBody(o: RuleOpts): Record<string, unknown> {
  return {
    ...(o.source !== undefined && { source: o.source }),
    ...(o.target !== undefined && { target: o.target }),
    ...(o.credentialSet !== undefined && { credentialSet: o.credentialSet }),
    ...(o.tagTtl !== undefined && { tagTtlSeconds: o.tagTtl }),
    ...(o.concurrency !== undefined && { concurrency: o.concurrency }),
    ...(o.rate !== undefined && { ratePerSecond: o.rate }),
  };
}

function ruleOptions(c: Command): Command {
  return c
    .option('--source <namespace>', 'REGISTRY/NAMESPACE/* (docker.io/library/*) or one repository')
    .option('--target <namespace>', 'LOCAL/NAMESPACE/* (hub/library/*) or one repository')
    .option('--credential-set <name>', 'log in to the upstream with this credential set')
    .option(
      '--tag-ttl <seconds>',
      'serve a cached tag this long before a HEAD revalidates it (default 300)',
      num,
    )
    .option('--concurrency <n>', 'upstream operations in flight at once, per node (default 4)', num)
    .option('--rate <n>', 'upstream operations started per second, per node (default 10)', num);
}

export function registerCacheCommands(program: Command): void {
  const cache = program
    .command('cache')
    .description(
      'pull-through cache rules: serve another registry’s namespace as local repositories',
    );
  const none = (c: Command) => c;
  sub<RuleOpts>(cache, 'create <name>', 'create a cache rule', ruleOptions, ([name], o) =>
    call(o, 'POST', BASE, { name, ...ruleBody(o) }),
  );
  sub<RuleOpts>(cache, 'update <name>', 'change a cache rule', ruleOptions, ([name], o) =>
    call(o, 'PATCH', `${BASE}/${enc(name!)}`, ruleBody(o)),
  );
  sub(cache, 'show <name>', 'show a cache rule', none, ([name], o) =>
    call(o, 'GET', `${BASE}/${enc(name!)}`),
  );
  sub(cache, 'list', 'list the cache rules', none, (_a, o) => call(o, 'GET', BASE));
  sub(cache, 'delete <name>', 'delete a cache rule (cached content stays)', none, ([name], o) =>
    call(o, 'DELETE', `${BASE}/${enc(name!)}`),
  );
}
