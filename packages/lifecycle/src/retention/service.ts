import { readJson, type ObjectStore, type RepositoryLayout } from '@meridian/storage';
import { purge, type PurgeReport, type PurgeTarget } from '../purge/purger';
import type { CompiledRule, RetentionRule } from './rules';
import type { UntaggedPolicy, UntaggedRetention } from './untagged';

/** What one rule's run did (or, stopped or dry, would do). */
export interface RuleRun {
  rule: string;
  fingerprint: string;
  dryRun: boolean;
  /** Why nothing was removed although this was not a dry run (a first run awaiting approval). */
  stopped?: string;
  report: PurgeReport;
}

export interface RetentionRunReport {
  at: string;
  dryRun: boolean;
  /** The untagged-manifest policy's share of the run (absent while it is off). */
  untagged?: PurgeReport;
  rules: RuleRun[];
}

/** A rule's state, kept in the primary region's store beside the schedule. */
export interface RuleState {
  /** The definition that was approved (its fingerprint); a changed rule needs approval again. */
  approved?: { fingerprint: string; at: string; by: string };
  lastRun?: { at: string; dryRun: boolean; stopped?: string; totals: PurgeReport['totals'] };
}

export interface RuleStatus extends RetentionRule {
  fingerprint: string;
  approved: boolean;
  state: RuleState;
}

export interface RetentionServiceOptions {
  store: ObjectStore;
  layout: RepositoryLayout;
  /** How removals happen (the registry's adapter: events, locks, re-checks). */
  target: PurgeTarget;
  rules: CompiledRule[];
  untagged: UntaggedRetention;
  /** Emits `retentionFinished` for a repository a run changed. */
  onRemoved?: (
    repository: string,
    rule: string,
    removed: { tags: string[]; manifests: string[]; bytes: number },
  ) => Promise<void>;
  /** The clock (tests move it). Default `Date.now`. */
  now?: () => number;
}

/** The name untagged retention's share of a run goes by (no rule may take it). */
export const UNTAGGED_RULE = 'untagged';

const stateKey = (name: string): string => `_retention/rules/${name}.json`;

/**
 * Scheduled retention (ADR 0021): the untagged-manifest policy and the configured rules, on the
 * purge engine (one planner for dry runs and runs, the same rails). A rule's first run — and the
 * first after its definition changed — only plans and stops until it is approved (`approve`, or a
 * run with `force`). One run at a time per node.
 */
export class RetentionService {
  private readonly now: () => number;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: RetentionServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  async status(): Promise<{
    untagged: UntaggedPolicy & { scheduled: number };
    rules: RuleStatus[];
  }> {
    const policy = await this.opts.untagged.policy();
    const scheduled = policy.enabled ? (await this.opts.untagged.scheduled()).length : 0;
    const rules: RuleStatus[] = [];
    for (const c of this.opts.rules) {
      const state = await this.state(c.rule.name);
      rules.push({
        ...c.rule,
        fingerprint: c.fingerprint,
        approved: state.approved?.fingerprint === c.fingerprint,
        state,
      });
    }
    return { untagged: { ...policy, scheduled }, rules };
  }

  /** Approves a rule's current definition: scheduled runs remove from now on (rails still hold). */
  approve(name: string, by: string): Promise<RuleStatus> {
    return this.serial(async () => {
      const c = this.rule(name);
      await this.save(name, { ...(await this.state(name)), approved: this.approval(c, by) });
      return (await this.status()).rules.find((r) => r.name === name)!;
    });
  }

  /**
   * Runs retention now: the untagged policy and every rule, or only `rule` (`untagged` names
   * the policy). `force` approves the rules it runs and goes past the rails (share, last tag).
   */
  run(opts: { rule?: string; dryRun?: boolean; force?: boolean; by?: string } = {}) {
    return this.serial(() => this.runNow(opts));
  }

  private async runNow(opts: {
    rule?: string;
    dryRun?: boolean;
    force?: boolean;
    by?: string;
  }): Promise<RetentionRunReport> {
    const now = this.now();
    const dryRun = opts.dryRun === true;
    if (opts.rule !== undefined && opts.rule !== UNTAGGED_RULE) this.rule(opts.rule);
    const report: RetentionRunReport = { at: new Date(now).toISOString(), dryRun, rules: [] };
    if (opts.rule === undefined || opts.rule === UNTAGGED_RULE)
      report.untagged = await this.runUntagged(now, dryRun);
    for (const c of this.opts.rules) {
      if (opts.rule !== undefined && opts.rule !== c.rule.name) continue;
      report.rules.push(
        await this.runRule(c, now, dryRun, opts.force === true, opts.by ?? 'system'),
      );
    }
    return report;
  }

  private async runUntagged(now: number, dryRun: boolean): Promise<PurgeReport | undefined> {
    const { untagged } = this.opts;
    if (!(await untagged.policy()).enabled) return undefined;
    const due = await untagged.due(now);
    const report = await purge(this.opts.layout, this.opts.target, {
      filters: [],
      untaggedDue: due,
      dryRun,
      now,
      onRemoved: (repository, removed) =>
        this.opts.onRemoved?.(repository, UNTAGGED_RULE, removed) ?? Promise.resolve(),
    });
    if (dryRun) return report;
    // Every due record was re-checked: gone, tagged again or kept by a parent. A locked one
    // stays scheduled (it goes once unlocked).
    for (const [repository, digests] of due) {
      const locked = new Set(
        report.repositories.find((r) => r.repository === repository)?.locked.map((l) => l.digest) ??
          [],
      );
      for (const d of digests) if (!locked.has(d)) await untagged.forget(repository, d);
    }
    return report;
  }

  private async runRule(
    c: CompiledRule,
    now: number,
    dryRun: boolean,
    force: boolean,
    by: string,
  ): Promise<RuleRun> {
    const name = c.rule.name;
    const state = await this.state(name);
    const approved = state.approved?.fingerprint === c.fingerprint;
    const stopped =
      !dryRun && !approved && !force
        ? `the first run of rule ${name} (or of its changed definition) only plans: approve it (meridian retention approve ${name}) or run it with --force`
        : undefined;
    const report = await purge(this.opts.layout, this.opts.target, {
      ...c.criteria,
      force,
      now,
      dryRun: dryRun || stopped !== undefined,
      onRemoved: (repository, removed) =>
        this.opts.onRemoved?.(repository, name, removed) ?? Promise.resolve(),
    });
    if (!dryRun)
      await this.save(name, {
        ...state,
        ...(force && !approved && { approved: this.approval(c, by) }),
        lastRun: {
          at: new Date(now).toISOString(),
          dryRun: stopped !== undefined,
          ...(stopped && { stopped }),
          totals: report.totals,
        },
      });
    return { rule: name, fingerprint: c.fingerprint, dryRun: dryRun || !!stopped, stopped, report };
  }

  private approval(c: CompiledRule, by: string): NonNullable<RuleState['approved']> {
    return { fingerprint: c.fingerprint, at: new Date(this.now()).toISOString(), by };
  }

  private rule(name: string): CompiledRule {
    const c = this.opts.rules.find((r) => r.rule.name === name);
    if (!c) throw new RetentionRequestError(`no retention rule named ${name.slice(0, 70)}`);
    return c;
  }

  private async state(name: string): Promise<RuleState> {
    return (await readJson<RuleState>(this.opts.store, stateKey(name))) ?? {};
  }

  private async save(name: string, s: RuleState): Promise<void> {
    await this.opts.store.put(stateKey(name), Buffer.from(JSON.stringify(s)));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.running.then(fn, fn);
    this.running = p.catch(() => undefined);
    return p;
  }
}

/** A request that names no rule (maps to HTTP 404/400 at the API). */
export class RetentionRequestError extends Error {}
