import type { AuditLog } from './audit-log';
import type { CredentialStore } from './credential-store';
import {
  isValidIdentityName,
  ROLES,
  SCOPE_MAP_ACTION_NAMES,
  type IdentityRecord,
  type PasswordSlot,
  type Principal,
  type RoleAssignment,
  type ScopeMapRule,
  type TokenRecord,
} from './model';
import { hashPassword } from './passwords';
import { isValidPattern } from './patterns';

/** An admin operation's refusal, with the HTTP status the admin API answers with. */
export class AdminError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

/** Who makes a change (for the audit log). */
export interface Actor {
  principal: Principal;
  address: string;
}

export interface PasswordView {
  name: PasswordSlot['name'];
  createdAt: string;
  expiresAt?: string;
}
export type IdentityView = Omit<IdentityRecord, 'passwords'> & { passwords: PasswordView[] };
export type TokenView = Omit<TokenRecord, 'passwords'> & { passwords: PasswordView[] };
export interface AdminUserView {
  username: string;
  enabled: boolean;
  passwords: PasswordView[];
}
/** A password shown once, when it is created. */
export interface NewPassword {
  name: PasswordSlot['name'];
  password: string;
  expiresAt?: string;
}

const MIN_PASSWORD = 8;
export const SLOTS = ['password1', 'password2'] as const;

export const view = (slots: PasswordSlot[]): PasswordView[] =>
  slots.map(({ name, createdAt, expiresAt }) => ({
    name,
    createdAt,
    ...(expiresAt ? { expiresAt } : {}),
  }));

/** What every admin operation shares: the records, the audit log, one username space. */
export abstract class AdminBase {
  constructor(
    protected readonly store: CredentialStore,
    protected readonly audit: AuditLog,
    protected readonly registryName: string,
  ) {}

  protected get snap() {
    return this.store.snapshot;
  }

  protected async audited<T>(
    actor: Actor,
    action: string,
    target: string,
    fn: () => Promise<T>,
    detail?: Record<string, unknown>,
  ): Promise<T> {
    const base = {
      actor: actor.principal.name,
      actorKind: actor.principal.kind,
      action,
      target,
      address: actor.address,
      ...(detail ? { detail } : {}),
    };
    try {
      const out = await fn();
      this.audit.record({ ...base, outcome: 'success' });
      return out;
    } catch (err) {
      this.audit.record({
        ...base,
        outcome: 'failure',
        reason: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
  }

  /** Identities, tokens and the admin user share one username space. */
  protected checkNewLogin(name: string): void {
    if (!isValidIdentityName(name)) throw new AdminError(400, `invalid name: ${name}`);
    if (name === this.registryName)
      throw new AdminError(409, `${name} is the registry's name (the admin user's username)`);
    if (this.snap.identities.has(name) || this.snap.tokens.has(name))
      throw new AdminError(409, `an identity or token named ${name} already exists`);
  }
}

export function now(): string {
  return new Date().toISOString();
}

export async function slot(
  name: PasswordSlot['name'],
  password: string,
  expiresAt?: string,
): Promise<PasswordSlot> {
  return {
    name,
    hash: await hashPassword(password),
    createdAt: now(),
    ...(expiresAt ? { expiresAt } : {}),
  };
}

export function replaceSlot(slots: PasswordSlot[], s: PasswordSlot): PasswordSlot[] {
  return [...slots.filter((x) => x.name !== s.name), s].sort((a, b) =>
    a.name.localeCompare(b.name),
  );
}

export function checkSlot(name: string): void {
  if (name !== 'password1' && name !== 'password2')
    throw new AdminError(400, 'the password name must be password1 or password2');
}

export function checkPassword(p: string): void {
  if (typeof p !== 'string' || p.length < MIN_PASSWORD || p.length > 256)
    throw new AdminError(400, `a password needs ${MIN_PASSWORD} to 256 characters`);
}

export function checkExpiry(e: string | undefined): string | undefined {
  if (e === undefined || e === '') return undefined;
  const t = Date.parse(e);
  if (Number.isNaN(t)) throw new AdminError(400, `invalid expiry: ${e} (an ISO 8601 time)`);
  return new Date(t).toISOString();
}

export function checkRole(r: RoleAssignment): void {
  if (!ROLES.includes(r.role))
    throw new AdminError(400, `unknown role ${String(r.role)}; one of ${ROLES.join(', ')}`);
  if (!isValidPattern(r.scope))
    throw new AdminError(400, `invalid scope ${r.scope}: * or a repository pattern like team-a/*`);
}

export function checkRules(rules: ScopeMapRule[]): ScopeMapRule[] {
  if (!Array.isArray(rules) || rules.length === 0)
    throw new AdminError(400, 'a scope map needs at least one rule');
  return rules.map((r) => {
    if (!isValidPattern(r.repository))
      throw new AdminError(400, `invalid repository pattern: ${String(r.repository)}`);
    if (!Array.isArray(r.actions) || r.actions.length === 0)
      throw new AdminError(400, `no actions for ${r.repository}`);
    for (const a of r.actions)
      if (!SCOPE_MAP_ACTION_NAMES.includes(a))
        throw new AdminError(
          400,
          `unknown action ${String(a)}; one of ${SCOPE_MAP_ACTION_NAMES.join(', ')}`,
        );
    return { repository: r.repository, actions: [...new Set(r.actions)] };
  });
}

export function dedupeRoles(roles: RoleAssignment[]): RoleAssignment[] {
  const seen = new Set<string>();
  return roles.filter((r) => {
    const k = `${r.role} ${r.scope}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function identityView(i: IdentityRecord): IdentityView {
  return { ...i, passwords: view(i.passwords) };
}

export function tokenView(t: TokenRecord): TokenView {
  return { ...t, passwords: view(t.passwords) };
}

export function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name);
}
