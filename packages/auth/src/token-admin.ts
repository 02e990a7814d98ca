import { AuthLayout } from './auth-layout';
import {
  isValidIdentityName,
  type PasswordSlot,
  type ScopeMapRecord,
  type ScopeMapRule,
  type TokenRecord,
} from './model';
import { generatePassword } from './passwords';
import {
  AdminBase,
  AdminError,
  checkExpiry,
  checkRules,
  checkSlot,
  now,
  replaceSlot,
  slot,
  SLOTS,
  byName,
  tokenView,
  type Actor,
  type NewPassword,
  type TokenView,
} from './admin-records';

/** Scope maps and repository-scoped tokens. */
export abstract class TokenAdmin extends AdminBase {
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
}
