import type { AuditEvent, AuditQuery } from './audit-log';
import { AuthLayout } from './auth-layout';
import {
  REGISTRY_SCOPE,
  type AdminUserRecord,
  type IdentityRecord,
  type PasswordSlot,
  type RegistrySettings,
  type RoleAssignment,
} from './model';
import { generatePassword } from './passwords';
import {
  AdminError,
  checkExpiry,
  checkPassword,
  checkRole,
  checkSlot,
  dedupeRoles,
  identityView,
  byName,
  now,
  replaceSlot,
  slot,
  SLOTS,
  view,
  type Actor,
  type AdminUserView,
  type IdentityView,
  type NewPassword,
} from './admin-records';
import { TokenAdmin } from './token-admin';

export * from './admin-records';

/**
 * The administrative operations behind the admin API and CLI. Each change is written to the
 * primary region's credential records and audited (who, what, when, from where); passwords are
 * returned once, when generated, and stored only as scrypt hashes.
 */
export class AdminService extends TokenAdmin {
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

  /**
   * Recovery of the registry (`meridian admin reset-owner`, run with access to the primary
   * region's store, no login): the `owner` user gets one new password (given, or generated and
   * returned) in place of both, is enabled, and holds Owner on the registry — created if it was
   * deleted. Audited like any change.
   */
  async resetOwner(actor: Actor, password?: string): Promise<{ name: string; password?: string }> {
    const name = 'owner';
    if (password !== undefined) checkPassword(password);
    if (this.snap.tokens.has(name) || name === this.registryName)
      throw new AdminError(409, `"${name}" is a token or the admin user's name`);
    return this.audited(actor, 'identity.owner-reset', name, async () => {
      const generated = password === undefined ? generatePassword() : undefined;
      const s = await slot('password1', password ?? generated!);
      const owner: RoleAssignment = { role: 'Owner', scope: REGISTRY_SCOPE };
      await this.store.mutate<IdentityRecord>(AuthLayout.identity(name), (cur) => ({
        kind: 'user',
        name,
        createdAt: now(),
        ...cur,
        enabled: true,
        passwords: [s],
        roles: dedupeRoles([...(cur?.roles ?? []), owner]),
        updatedAt: now(),
      }));
      await this.store.mutate(AuthLayout.initialized, (cur) => cur ?? { at: now() });
      return { name, ...(generated ? { password: generated } : {}) };
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

  // --- audit

  queryAudit(q: AuditQuery): Promise<AuditEvent[]> {
    return this.audit.query(q);
  }
}
