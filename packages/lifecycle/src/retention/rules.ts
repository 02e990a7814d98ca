import { createHash } from 'node:crypto';
import { compilePattern } from '../purge/pattern';
import { parseDuration, type PurgeCriteria } from '../purge/plan';

/** A scheduled retention rule as configured (`retention.rules[]`, ADR 0021). */
export interface RetentionRule {
  /** `[a-z0-9][a-z0-9._-]*`, at most 63 characters: how the CLI, events and audit name it. */
  name: string;
  /** Repositories (regex, whole name). */
  repositories: string;
  /** Tags the rule considers (regex, whole name). Default every tag. */
  tags?: string;
  /** Tags the rule never removes (regex, whole name). */
  exclude?: string;
  /** Keep the newest N of the considered tags of each repository. */
  keep?: number;
  /** Only tags last moved longer ago than this (`30d`; at most 100 years). */
  olderThan?: string;
  /** Only tags not pulled (tag or manifest, any region) for this long; a never-pulled image counts from its push. */
  notPulledFor?: string;
  /** Also remove the manifests nothing keeps, with their index children and referrers. */
  untagged?: boolean;
  /** Remove locked tags and manifests too, lifting their own locks first. */
  includeLocked?: boolean;
  /** A repository losing more than this share of its tags is refused. Default 0.5. */
  maxShare?: number;
}

export interface CompiledRule {
  rule: RetentionRule;
  criteria: Omit<PurgeCriteria, 'now' | 'force'>;
  /** A digest of the definition: a changed rule is a new rule, and needs approval again. */
  fingerprint: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Validates a rule (regexes in RE2, durations ≤ 100 years) into purge criteria. Throws naming it. */
export function compileRule(rule: RetentionRule): CompiledRule {
  if (rule.name === 'untagged')
    throw new Error('retention rule name untagged: reserved for the untagged-manifest policy');
  if (!NAME.test(rule.name))
    throw new Error(`retention rule name ${rule.name.slice(0, 70)}: [a-z0-9._-], at most 63`);
  const what = (k: string) => `retention rule ${rule.name}: ${k}`;
  if (
    rule.keep === undefined &&
    rule.olderThan === undefined &&
    rule.notPulledFor === undefined &&
    !rule.untagged
  )
    throw new Error(
      `${what('')}needs keep, olderThan, notPulledFor or untagged (or it would remove everything it matches)`,
    );
  if (rule.keep !== undefined && !(Number.isSafeInteger(rule.keep) && rule.keep >= 0))
    throw new Error(what('keep: a whole number'));
  if (rule.maxShare !== undefined && !(rule.maxShare > 0 && rule.maxShare <= 1))
    throw new Error(what('maxShare: a number in (0, 1]'));
  const criteria: CompiledRule['criteria'] = {
    filters: [
      {
        repository: compilePattern(rule.repositories, what('repositories')),
        tag: compilePattern(rule.tags ?? '.*', what('tags')),
      },
    ],
    ...(rule.exclude !== undefined && { exclude: compilePattern(rule.exclude, what('exclude')) }),
    ...(rule.keep !== undefined && { keep: rule.keep }),
    ...(rule.olderThan !== undefined && {
      agoMs: parseDuration(rule.olderThan, what('olderThan')),
    }),
    ...(rule.notPulledFor !== undefined && {
      notPulledForMs: parseDuration(rule.notPulledFor, what('notPulledFor')),
    }),
    untagged: rule.untagged === true,
    includeLocked: rule.includeLocked === true,
    ...(rule.maxShare !== undefined && { maxShare: rule.maxShare }),
  };
  const canonical = JSON.stringify(Object.entries(rule).sort(([a], [b]) => a.localeCompare(b)));
  return {
    rule,
    criteria,
    fingerprint: createHash('sha256').update(canonical).digest('hex').slice(0, 16),
  };
}
