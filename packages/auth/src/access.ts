import { isValidName } from '@meridian/oci';
import { REGISTRY_SCOPE, type Grant, type Permission } from './model';
import { matchesPattern } from './patterns';

/**
 * The Docker token protocol's access entries (`repository:team-a/app:pull,push`,
 * `registry:catalog:*`) and how grants satisfy them.
 */
export interface AccessEntry {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

/** Repository actions a client may ask for, and the permission each needs. */
const REPOSITORY_ACTIONS: Record<string, Permission> = {
  pull: 'pull',
  push: 'push',
  delete: 'delete',
  metadata_read: 'metadata_read',
  metadata_write: 'metadata_write',
};

/** Most scopes one token request may carry; more are ignored. */
const MAX_SCOPES = 64;

/**
 * Parses `scope` parameters (each may hold several space-separated scopes). Unknown types,
 * invalid names and unknown actions are dropped — a token never carries what was not understood.
 */
export function parseScopes(scopes: string[]): AccessEntry[] {
  const out = new Map<string, AccessEntry>();
  for (const s of scopes.flatMap((v) => v.split(' ')).slice(0, MAX_SCOPES)) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first <= 0 || last === first) continue;
    const type = s.slice(0, first);
    const name = s.slice(first + 1, last);
    const actions = s
      .slice(last + 1)
      .split(',')
      .filter((a) => a.length > 0);
    let entry: AccessEntry;
    if (type === 'repository' && isValidName(name)) {
      const known = actions.filter((a) => a === '*' || a in REPOSITORY_ACTIONS);
      entry = { type, name, actions: known };
    } else if (type === 'registry' && name === 'catalog') {
      entry = { type, name, actions: actions.filter((a) => a === '*') };
    } else continue;
    const key = `${entry.type}:${entry.name}`;
    const prev = out.get(key);
    out.set(key, prev ? { ...prev, actions: [...prev.actions, ...entry.actions] } : entry);
  }
  return [...out.values()].map((e) => ({ ...e, actions: [...new Set(e.actions)] }));
}

export function formatScope(e: AccessEntry): string {
  return `${e.type}:${e.name}:${e.actions.join(',')}`;
}

/** The permissions `grants` give on one repository. */
export function permissionsOn(grants: Grant[], repository: string): Set<Permission> {
  const out = new Set<Permission>();
  for (const g of grants)
    if (matchesPattern(g.pattern, repository)) for (const p of g.permissions) out.add(p);
  return out;
}

/** Whether `grants` give `permission` over the whole registry (catalog, administration). */
export function hasRegistryPermission(grants: Grant[], permission: Permission): boolean {
  return grants.some((g) => g.pattern === REGISTRY_SCOPE && g.permissions.includes(permission));
}

/**
 * Intersects what was asked with what `grants` allow: an action the caller may not have is
 * dropped (never refused), and an entry left with no action is left out.
 */
export function grantAccess(grants: Grant[], requested: AccessEntry[]): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const r of requested) {
    let actions: string[] = [];
    if (r.type === 'repository') {
      const have = permissionsOn(grants, r.name);
      const asked = r.actions.includes('*')
        ? [...new Set([...r.actions.filter((a) => a !== '*'), 'pull', 'push', 'delete'])]
        : r.actions;
      actions = asked.filter((a) => {
        const p = REPOSITORY_ACTIONS[a];
        return p !== undefined && have.has(p);
      });
    } else if (r.type === 'registry' && r.name === 'catalog') {
      actions = hasRegistryPermission(grants, 'metadata_read') ? ['*'] : [];
    }
    if (actions.length > 0) out.push({ type: r.type, name: r.name, actions });
  }
  return out;
}

/** Whether a token's access entries allow `action` on `type:name`. */
export function accessAllows(
  access: AccessEntry[],
  type: AccessEntry['type'],
  name: string,
  action: string,
): boolean {
  return access.some(
    (e) =>
      e.type === type && e.name === name && (e.actions.includes(action) || e.actions.includes('*')),
  );
}
