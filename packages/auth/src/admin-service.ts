import type { AuditLog, AuditQuery, AuditEvent } from './audit-log';
import { AuthLayout } from './auth-layout';
import type { CredentialStore } from './credential-store';
import {
  isValidIdentityName,
  REGISTRY_SCOPE,
  ROLES,
  SCOPE_MAP_ACTION_NAMES,
  type AdminUserRecord,
  type IdentityRecord,
  type PasswordSlot,
  type Principal,
  type RegistrySettings,
  type RoleAssignment,
  type ScopeMapRecord,
  type ScopeMapRule,
  type TokenRecord,
} from './model';
import { generatePassword, hashPassword } from './passwords';
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
const SLOTS = ['password1', 'password2'] as const;

const view = (slots: PasswordSlot[]): PasswordView[] =>
  slots.map(({ name, createdAt, expiresAt }) => ({
    name,
    createdAt,
    ...(expiresAt ? { expiresAt } : {}),
  }));

/**
 * The administrative operations behind the admin API and CLI. Each change is written to the
 * primary region's credential records and audited (who, what, when, from where); passwords are
 * returned once, when generated, and stored only as scrypt hashes.
 */
export class AdminService {
  constructor(
    private readonly store: CredentialStore,
    private readonly audit: AuditLog,
    private readonly registryName: string,
  ) {}

  private get snap() {
    return this.store.snapshot;
  }

  private async audited<T>(
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

  // --- settings

  settings(): RegistrySettings {
    return this.snap.settings;
  }

  async updateSettings(actor: Actor, patch: Partial<RegistrySettings>): Promise<RegistrySettings> {
    if (patch.anonymousPull !== undefined && typeof patch.anonymousPull !== 'boolean')
      throw new AdminError(400, 'anonymousPull must be true or false');
    return this.audited(
      actor,
      'settings.update',
      'registry',
      async () =>
        (await this.store.mutate<RegistrySettings>(AuthLayout.settings, (cur) => ({
          ...this.snap.settings,
          ...cur,
          ...(patch.anonymousPull !== undefined ? { anonymousPull: patch.anonymousPull } : {}),
        })))!,
      { ...patch },
    );
  }

  // --- the admin user

  adminUser(): AdminUserView {
    const a = this.snap.adminUser;
    return {
      username: this.registryName,
      enabled: a?.enabled ?? false,
      passwords: view(a?.passwords ?? []),
    };
  }

  /** Enables or disables the admin user; the first enable generates both passwords. */
  async setAdminUserEnabled(actor: Actor, enabled: boolean): Promise<NewPassword[]> {
    return this.audited(
      actor,
      enabled ? 'admin-user.enable' : 'admin-user.disable',
      this.registryName,
      async () => {
        const fresh: NewPassword[] = [];
        const slots: PasswordSlot[] = [];
        if (enabled && (this.snap.adminUser?.passwords.length ?? 0) === 0)
          for (const name of SLOTS) {
            const password = generatePassword();
            fresh.push({ name, password });
            slots.push(await slot(name, password));
          }
        await this.store.mutate<AdminUserRecord>(AuthLayout.adminUser, (cur) => ({
          enabled,
          passwords: cur && cur.passwords.length > 0 ? cur.passwords : slots,
          updatedAt: now(),
        }));
        return fresh;
      },
    );
  }

  async regenerateAdminPassword(actor: Actor, name: PasswordSlot['name']): Promise<NewPassword> {
    checkSlot(name);
    return this.audited(
      actor,
      'admin-user.password.regenerate',
      `${this.registryName}/${name}`,
      async () => {
        const password = generatePassword();
        const s = await slot(name, password);
        await this.store.mutate<AdminUserRecord>(AuthLayout.adminUser, (cur) => ({
          enabled: cur?.enabled ?? false,
          passwords: replaceSlot(cur?.passwords ?? [], s),
          updatedAt: now(),
        }));
        return { name, password };
      },
    );
  }

  // --- users and service identities

  listIdentities(): IdentityView[] {
    return [...this.snap.identities.values()].map(identityView).sort(byName);
  }

  identity(name: string): IdentityView {
    const i = this.snap.identities.get(name);
    if (!i) throw new AdminError(404, `no identity named ${name}`);
    return identityView(i);
  }

  /** Creates a user or service identity; without a password one is generated and returned. */
  async createIdentity(
    actor: Actor,
    input: { kind: 'user' | 'service'; name: string; password?: string; roles?: RoleAssignment[] },
  ): Promise<{ identity: IdentityView; password?: string }> {
    const { name } = input;
    if (input.kind !== 'user' && input.kind !== 'service')
      throw new AdminError(400, 'kind must be user or service');
    this.checkNewLogin(name);
    for (const r of input.roles ?? []) checkRole(r);
    if (input.password !== undefined) checkPassword(input.password);
    return this.audited(
      actor,
      'identity.create',
      name,
      async () => {
        const generated = input.password === undefined ? generatePassword() : undefined;
        const s = await slot('password1', input.password ?? generated!);
        const record = await this.store.mutate<IdentityRecord>(AuthLayout.identity(name), (cur) => {
          if (cur) throw new AdminError(409, `identity ${name} already exists`);
          return {
            kind: input.kind,
            name,
            enabled: true,
            passwords: [s],
            roles: dedupeRoles(input.roles ?? []),
            createdAt: now(),
            updatedAt: now(),
          };
        });
        return { identity: identityView(record!), ...(generated ? { password: generated } : {}) };
      },
      { kind: input.kind, roles: input.roles ?? [] },
    );
  }

  async deleteIdentity(actor: Actor, name: string): Promise<void> {
    await this.audited(actor, 'identity.delete', name, async () => {
      this.identity(name);
      this.keepAnOwner(name, () => []);
      await this.store.mutate<IdentityRecord>(AuthLayout.identity(name), () => undefined);
    });
  }

  async setIdentityEnabled(actor: Actor, name: string, enabled: boolean): Promise<IdentityView> {
    return this.audited(actor, enabled ? 'identity.enable' : 'identity.disable', name, async () => {
      if (!enabled) this.keepAnOwner(name, () => []);
      return identityView(await this.updateIdentity(name, (i) => ({ ...i, enabled })));
    });
  }

  /** Sets (or, without `password`, generates) one of an identity's passwords. */
  async setIdentityPassword(
    actor: Actor,
    name: string,
    opts: { password?: string; slot?: PasswordSlot['name']; expiresAt?: string } = {},
  ): Promise<Omit<NewPassword, 'password'> & { password?: string }> {
    const slotName = opts.slot ?? 'password1';
    checkSlot(slotName);
    if (opts.password !== undefined) checkPassword(opts.password);
    const expiresAt = checkExpiry(opts.expiresAt);
    return this.audited(actor, 'identity.password.set', `${name}/${slotName}`, async () => {
      this.identity(name);
      const password = opts.password ?? generatePassword();
      const s = await slot(slotName, password, expiresAt);
      await this.updateIdentity(name, (i) => ({ ...i, passwords: replaceSlot(i.passwords, s) }));
      return {
        name: slotName,
        ...(opts.password === undefined ? { password } : {}),
        ...(expiresAt ? { expiresAt } : {}),
      };
    });
  }

  async assignRole(actor: Actor, name: string, assignment: RoleAssignment): Promise<IdentityView> {
    checkRole(assignment);
    return this.audited(
      actor,
      'role.assign',
      name,
      async () =>
        identityView(
          await this.updateIdentity(name, (i) => ({
            ...i,
            roles: dedupeRoles([...i.roles, assignment]),
          })),
        ),
      { ...assignment },
    );
  }

  async removeRole(actor: Actor, name: string, assignment: RoleAssignment): Promise<IdentityView> {
    return this.audited(
      actor,
      'role.remove',
      name,
      async () => {
        const same = (r: RoleAssignment) =>
          r.role === assignment.role && r.scope === (assignment.scope || REGISTRY_SCOPE);
        const current = this.identity(name);
        if (!current.roles.some(same))
          throw new AdminError(
            404,
            `${name} has no ${assignment.role} role on ${assignment.scope}`,
          );
        this.keepAnOwner(name, (roles) => roles.filter((r) => !same(r)));
        return identityView(
          await this.updateIdentity(name, (i) => ({
            ...i,
            roles: i.roles.filter((r) => !same(r)),
          })),
        );
      },
      { ...assignment },
    );
  }

  private async updateIdentity(
    name: string,
    fn: (i: IdentityRecord) => IdentityRecord,
  ): Promise<IdentityRecord> {
    const out = await this.store.mutate<IdentityRecord>(AuthLayout.identity(name), (cur) => {
      if (!cur) throw new AdminError(404, `no identity named ${name}`);
      return { ...fn(cur), updatedAt: now() };
    });
    return out!;
  }

  /** Refuses a change that would leave no enabled identity with Owner on the registry. */
  private keepAnOwner(
    name: string,
    rolesAfter: (roles: RoleAssignment[]) => RoleAssignment[],
  ): void {
    const isOwner = (i: IdentityRecord, roles = i.roles) =>
      i.enabled && roles.some((r) => r.role === 'Owner' && r.scope === REGISTRY_SCOPE);
    const owners = [...this.snap.identities.values()].filter((i) => isOwner(i));
    const target = this.snap.identities.get(name);
    if (!target || !isOwner(target) || owners.length > 1) return;
    if (!isOwner(target, rolesAfter(target.roles)))
      throw new AdminError(409, `${name} is the last enabled Owner of the registry`);
  }

  // --- scope maps

  listScopeMaps(): ScopeMapRecord[] {
    return [...this.snap.scopeMaps.values()].sort(byName);
  }

  scopeMap(name: string): ScopeMapRecord {
    const m = this.snap.scopeMaps.get(name);
    if (!m) throw new AdminError(404, `no scope map named ${name}`);
    return m;
  }

  async createScopeMap(
    actor: Actor,
    input: { name: string; description?: string; rules: ScopeMapRule[] },
  ): Promise<ScopeMapRecord> {
    if (!isValidIdentityName(input.name))
      throw new AdminError(400, `invalid scope map name: ${input.name}`);
    const rules = checkRules(input.rules);
    return this.audited(
      actor,
      'scope-map.create',
      input.name,
      async () =>
        (await this.store.mutate<ScopeMapRecord>(AuthLayout.scopeMap(input.name), (cur) => {
          if (cur) throw new AdminError(409, `scope map ${input.name} already exists`);
          return {
            name: input.name,
            ...(input.description ? { description: input.description } : {}),
            rules,
            createdAt: now(),
            updatedAt: now(),
          };
        }))!,
      { rules },
    );
  }

  async updateScopeMap(
    actor: Actor,
    name: string,
    input: { description?: string; rules?: ScopeMapRule[] },
  ): Promise<ScopeMapRecord> {
    const rules = input.rules === undefined ? undefined : checkRules(input.rules);
    return this.audited(
      actor,
      'scope-map.update',
      name,
      async () => {
        if (this.scopeMap(name).builtIn) throw new AdminError(409, `${name} is built in`);
        return (await this.store.mutate<ScopeMapRecord>(AuthLayout.scopeMap(name), (cur) => {
          if (!cur) throw new AdminError(404, `no scope map named ${name}`);
          return {
            ...cur,
            ...(input.description !== undefined ? { description: input.description } : {}),
            ...(rules ? { rules } : {}),
            updatedAt: now(),
          };
        }))!;
      },
      rules ? { rules } : undefined,
    );
  }

  async deleteScopeMap(actor: Actor, name: string): Promise<void> {
    await this.audited(actor, 'scope-map.delete', name, async () => {
      if (this.scopeMap(name).builtIn) throw new AdminError(409, `${name} is built in`);
      const users = [...this.snap.tokens.values()].filter((t) => t.scopeMap === name);
      if (users.length > 0)
        throw new AdminError(
          409,
          `scope map ${name} is used by tokens: ${users.map((t) => t.name).join(', ')}`,
        );
      await this.store.mutate(AuthLayout.scopeMap(name), () => undefined);
    });
  }

  // --- repository-scoped tokens

  listTokens(): TokenView[] {
    return [...this.snap.tokens.values()].map(tokenView).sort(byName);
  }

  token(name: string): TokenView {
    const t = this.snap.tokens.get(name);
    if (!t) throw new AdminError(404, `no token named ${name}`);
    return tokenView(t);
  }

  /** Creates a token bound to a scope map, with both passwords generated (shown once). */
  async createToken(
    actor: Actor,
    input: {
      name: string;
      scopeMap: string;
      enabled?: boolean;
      expiresAt?: string;
      passwords?: boolean;
    },
  ): Promise<{ token: TokenView; passwords: NewPassword[] }> {
    this.checkNewLogin(input.name);
    const expiresAt = checkExpiry(input.expiresAt);
    return this.audited(
      actor,
      'token.create',
      input.name,
      async () => {
        this.scopeMap(input.scopeMap);
        const fresh: NewPassword[] = [];
        const slots: PasswordSlot[] = [];
        if (input.passwords !== false)
          for (const name of SLOTS) {
            const password = generatePassword();
            fresh.push({ name, password, ...(expiresAt ? { expiresAt } : {}) });
            slots.push(await slot(name, password, expiresAt));
          }
        const record = await this.store.mutate<TokenRecord>(AuthLayout.token(input.name), (cur) => {
          if (cur) throw new AdminError(409, `token ${input.name} already exists`);
          return {
            name: input.name,
            scopeMap: input.scopeMap,
            enabled: input.enabled ?? true,
            passwords: slots,
            createdAt: now(),
            updatedAt: now(),
          };
        });
        return { token: tokenView(record!), passwords: fresh };
      },
      { scopeMap: input.scopeMap },
    );
  }

  async setTokenEnabled(actor: Actor, name: string, enabled: boolean): Promise<TokenView> {
    return this.audited(actor, enabled ? 'token.enable' : 'token.disable', name, async () =>
      tokenView(await this.updateToken(name, (t) => ({ ...t, enabled }))),
    );
  }

  async setTokenScopeMap(actor: Actor, name: string, scopeMap: string): Promise<TokenView> {
    return this.audited(
      actor,
      'token.update',
      name,
      async () => {
        this.scopeMap(scopeMap);
        return tokenView(await this.updateToken(name, (t) => ({ ...t, scopeMap })));
      },
      { scopeMap },
    );
  }

  async deleteToken(actor: Actor, name: string): Promise<void> {
    await this.audited(actor, 'token.delete', name, async () => {
      this.token(name);
      await this.store.mutate(AuthLayout.token(name), () => undefined);
    });
  }

  /** Generates one of a token's two passwords (replacing it), with an optional expiry. */
  async generateTokenPassword(
    actor: Actor,
    name: string,
    slotName: PasswordSlot['name'],
    expiresAt?: string,
  ): Promise<NewPassword> {
    checkSlot(slotName);
    const expiry = checkExpiry(expiresAt);
    return this.audited(
      actor,
      'token.credential.generate',
      `${name}/${slotName}`,
      async () => {
        this.token(name);
        const password = generatePassword();
        const s = await slot(slotName, password, expiry);
        await this.updateToken(name, (t) => ({ ...t, passwords: replaceSlot(t.passwords, s) }));
        return { name: slotName, password, ...(expiry ? { expiresAt: expiry } : {}) };
      },
      expiry ? { expiresAt: expiry } : undefined,
    );
  }

  async deleteTokenPassword(
    actor: Actor,
    name: string,
    slotName: PasswordSlot['name'],
  ): Promise<TokenView> {
    checkSlot(slotName);
    return this.audited(actor, 'token.credential.delete', `${name}/${slotName}`, async () =>
      tokenView(
        await this.updateToken(name, (t) => ({
          ...t,
          passwords: t.passwords.filter((p) => p.name !== slotName),
        })),
      ),
    );
  }

  private async updateToken(
    name: string,
    fn: (t: TokenRecord) => TokenRecord,
  ): Promise<TokenRecord> {
    const out = await this.store.mutate<TokenRecord>(AuthLayout.token(name), (cur) => {
      if (!cur) throw new AdminError(404, `no token named ${name}`);
      return { ...fn(cur), updatedAt: now() };
    });
    return out!;
  }

  // --- audit

  queryAudit(q: AuditQuery): Promise<AuditEvent[]> {
    return this.audit.query(q);
  }

  /** Identities, tokens and the admin user share one username space. */
  private checkNewLogin(name: string): void {
    if (!isValidIdentityName(name)) throw new AdminError(400, `invalid name: ${name}`);
    if (name === this.registryName)
      throw new AdminError(409, `${name} is the registry's name (the admin user's username)`);
    if (this.snap.identities.has(name) || this.snap.tokens.has(name))
      throw new AdminError(409, `an identity or token named ${name} already exists`);
  }
}

function now(): string {
  return new Date().toISOString();
}

async function slot(
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

function replaceSlot(slots: PasswordSlot[], s: PasswordSlot): PasswordSlot[] {
  return [...slots.filter((x) => x.name !== s.name), s].sort((a, b) =>
    a.name.localeCompare(b.name),
  );
}

function checkSlot(name: string): void {
  if (name !== 'password1' && name !== 'password2')
    throw new AdminError(400, 'the password name must be password1 or password2');
}

function checkPassword(p: string): void {
  if (typeof p !== 'string' || p.length < MIN_PASSWORD || p.length > 256)
    throw new AdminError(400, `a password needs ${MIN_PASSWORD} to 256 characters`);
}

function checkExpiry(e: string | undefined): string | undefined {
  if (e === undefined || e === '') return undefined;
  const t = Date.parse(e);
  if (Number.isNaN(t)) throw new AdminError(400, `invalid expiry: ${e} (an ISO 8601 time)`);
  return new Date(t).toISOString();
}

function checkRole(r: RoleAssignment): void {
  if (!ROLES.includes(r.role))
    throw new AdminError(400, `unknown role ${String(r.role)}; one of ${ROLES.join(', ')}`);
  if (!isValidPattern(r.scope))
    throw new AdminError(400, `invalid scope ${r.scope}: * or a repository pattern like team-a/*`);
}

function checkRules(rules: ScopeMapRule[]): ScopeMapRule[] {
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

function dedupeRoles(roles: RoleAssignment[]): RoleAssignment[] {
  const seen = new Set<string>();
  return roles.filter((r) => {
    const k = `${r.role} ${r.scope}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function identityView(i: IdentityRecord): IdentityView {
  return { ...i, passwords: view(i.passwords) };
}

function tokenView(t: TokenRecord): TokenView {
  return { ...t, passwords: view(t.passwords) };
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name);
}
