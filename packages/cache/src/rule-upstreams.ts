import type { CacheRule } from './cache-rules';
import { RemoteRegistry, type UpstreamCredentials } from './remote-registry';
import { RuleLimiter } from './rule-limiter';
import type { UpstreamGuard } from './upstream-guard';

/**
 * Each cache rule's way to its upstream: one client (credentials, timeouts, the address guard)
 * and one limiter (concurrency and rate) per rule version — a rule that changes gets new ones.
 */
export class RuleUpstreams {
  private readonly limiters = new Map<string, RuleLimiter>();
  private readonly remotes = new Map<string, RemoteRegistry>();

  constructor(
    private readonly deps: {
      credentials?: (name: string) => Promise<UpstreamCredentials>;
      timeoutMs?: number;
      guard?: UpstreamGuard;
    },
  ) {}

  limiter(rule: CacheRule): RuleLimiter {
    const key = `${rule.name}\0${rule.updatedAt}`;
    let l = this.limiters.get(key);
    if (!l) {
      l = new RuleLimiter(rule.name, rule.concurrency, rule.ratePerSecond);
      this.limiters.set(key, l);
    }
    return l;
  }

  async remote(rule: CacheRule, baseUrl: string): Promise<RemoteRegistry> {
    const key = `${rule.name}\0${rule.updatedAt}`;
    let r = this.remotes.get(key);
    if (!r) {
      const credentials =
        rule.credentialSet && this.deps.credentials
          ? await this.deps.credentials(rule.credentialSet)
          : undefined;
      r = new RemoteRegistry({
        baseUrl,
        credentials,
        credentialName: rule.credentialSet
          ? `the credentials of credential set "${rule.credentialSet}"`
          : undefined,
        timeoutMs: this.deps.timeoutMs,
        guard: this.deps.guard,
      });
      this.remotes.set(key, r);
    }
    return r;
  }
}
