/** What the credential records say about a principal: the login a name names, what it may do. */
import type { AuthSnapshot } from './credential-store';
import {
  ROLE_PERMISSIONS,
  SCOPE_MAP_ACTIONS,
  type Grant,
  type PasswordSlot,
  type Principal,
  type PrincipalKind,
} from './model';

/**
 * The login `username` names: the admin user (named after the registry), an identity or a
 * token, with its passwords; undefined for none.
 */
export function findLogin(
  s: AuthSnapshot,
  registryName: string,
  username: string,
): { kind: PrincipalKind; enabled: boolean; slots: PasswordSlot[] } | undefined {
  if (username === registryName && s.adminUser)
    return { kind: 'admin-user', enabled: s.adminUser.enabled, slots: s.adminUser.passwords };
  const identity = s.identities.get(username);
  if (identity)
    return { kind: identity.kind, enabled: identity.enabled, slots: identity.passwords };
  const token = s.tokens.get(username);
  if (token) return { kind: 'token', enabled: token.enabled, slots: token.passwords };
  return undefined;
}

/** What a principal may do, from the current records. */
export function grantsFor(s: AuthSnapshot, p: Principal): Grant[] {
  switch (p.kind) {
    case 'anonymous':
      return s.settings.anonymousPull ? [{ pattern: '*', permissions: ['pull'] }] : [];
    case 'node':
      return [{ pattern: '*', permissions: ['pull', 'metadata_read'] }];
    case 'admin-user':
      return s.adminUser?.enabled
        ? [
            {
              pattern: '*',
              permissions: ['pull', 'push', 'delete', 'metadata_read', 'metadata_write'],
            },
          ]
        : [];
    case 'user':
    case 'service': {
      const identity = s.identities.get(p.name);
      if (!identity?.enabled || identity.kind !== p.kind) return [];
      return identity.roles.map((r) => ({
        pattern: r.scope,
        permissions: [...ROLE_PERMISSIONS[r.role]],
      }));
    }
    case 'token': {
      const token = s.tokens.get(p.name);
      const map = token?.enabled ? s.scopeMaps.get(token.scopeMap) : undefined;
      if (!map) return [];
      return map.rules.map((r) => ({
        pattern: r.repository,
        permissions: r.actions.map((a) => SCOPE_MAP_ACTIONS[a]),
      }));
    }
  }
}

/** Whether a password has passed its expiry. */
export function expired(s: PasswordSlot, now = Date.now()): boolean {
  return s.expiresAt !== undefined && Date.parse(s.expiresAt) <= now;
}
