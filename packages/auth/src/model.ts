/**
 * The access model, as data: identity kinds, roles, scope-map actions and what each grants.
 * Everything reduces to a list of grants — (repository pattern, permissions) — which the token
 * service intersects with what a client asks for.
 */

/** Fine-grained permissions. `pull`/`push`/`delete` are the distribution token actions. */
export const PERMISSIONS = [
  'pull',
  'push',
  'delete',
  'metadata_read',
  'metadata_write',
  'admin',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Built-in roles, assigned to users and service identities at registry or repository scope. */
export const ROLE_PERMISSIONS = {
  /** Pull images. */
  AcrPull: ['pull'],
  /** Pull and push images. */
  AcrPush: ['pull', 'push'],
  /** Delete images, manifests and blobs. */
  AcrDelete: ['delete'],
  /** Read metadata: the catalog, tag lists, replication status, the dashboard. */
  Reader: ['metadata_read'],
  /** Everything, including administration (identities, tokens, settings, the audit log). */
  Owner: ['pull', 'push', 'delete', 'metadata_read', 'metadata_write', 'admin'],
} as const satisfies Record<string, readonly Permission[]>;
export type Role = keyof typeof ROLE_PERMISSIONS;
export const ROLES = Object.keys(ROLE_PERMISSIONS) as Role[];

/** Scope-map actions (repository-scoped tokens) and the permission each maps to. */
export const SCOPE_MAP_ACTIONS = {
  'content/read': 'pull',
  'content/write': 'push',
  'content/delete': 'delete',
  'metadata/read': 'metadata_read',
  'metadata/write': 'metadata_write',
} as const satisfies Record<string, Permission>;
export type ScopeMapAction = keyof typeof SCOPE_MAP_ACTIONS;
export const SCOPE_MAP_ACTION_NAMES = Object.keys(SCOPE_MAP_ACTIONS) as ScopeMapAction[];

/** The pattern that means "the whole registry". */
export const REGISTRY_SCOPE = '*';

/** One of an identity's or token's two passwords (only the scrypt hash is kept). */
export interface PasswordSlot {
  name: 'password1' | 'password2';
  hash: string;
  createdAt: string;
  /** ISO time after which the password no longer works. */
  expiresAt?: string;
}

export interface RoleAssignment {
  role: Role;
  /** Repository pattern (`team-a/*`, `library/alpine`) or `*` for the whole registry. */
  scope: string;
}

/** A user (a person) or a service identity (CI, a deployment) with role assignments. */
export interface IdentityRecord {
  kind: 'user' | 'service';
  name: string;
  enabled: boolean;
  passwords: PasswordSlot[];
  roles: RoleAssignment[];
  createdAt: string;
  updatedAt: string;
}

/** The admin user: username = the registry name, two passwords, off by default. */
export interface AdminUserRecord {
  enabled: boolean;
  passwords: PasswordSlot[];
  updatedAt: string;
}

export interface ScopeMapRule {
  /** Repository pattern, e.g. `team-a/*`. */
  repository: string;
  actions: ScopeMapAction[];
}

export interface ScopeMapRecord {
  name: string;
  description?: string;
  rules: ScopeMapRule[];
  createdAt: string;
  updatedAt: string;
  /** Built-in maps cannot be changed or deleted. */
  builtIn?: boolean;
}

/** A repository-scoped token: a login whose permissions come from one scope map. */
export interface TokenRecord {
  name: string;
  scopeMap: string;
  enabled: boolean;
  passwords: PasswordSlot[];
  createdAt: string;
  updatedAt: string;
}

export interface RegistrySettings {
  /** Unauthenticated clients may pull every repository. Default false. */
  anonymousPull: boolean;
}

export const DEFAULT_SETTINGS: RegistrySettings = { anonymousPull: false };

/** A registry's public signing key, published so every region can verify its tokens. */
export interface PublicKeyRecord {
  kid: string;
  region: string;
  jwk: Record<string, unknown>;
  createdAt: string;
}

/** What a principal may do: permissions over a repository pattern. */
export interface Grant {
  pattern: string;
  permissions: Permission[];
}

export type PrincipalKind = 'user' | 'service' | 'admin-user' | 'token' | 'anonymous' | 'node';

/** Who is calling, after authentication. */
export interface Principal {
  kind: PrincipalKind;
  name: string;
  /** Fingerprint of the password used (refresh tokens are bound to it). */
  credential?: string;
}

/** The same built-in scope maps a cloud registry offers. */
export const BUILT_IN_SCOPE_MAPS: ScopeMapRecord[] = (
  [
    {
      name: '_repositories_pull',
      description: 'Pull every repository',
      rules: [{ repository: '*', actions: ['content/read'] }],
    },
    {
      name: '_repositories_push',
      description: 'Pull and push every repository',
      rules: [{ repository: '*', actions: ['content/read', 'content/write'] }],
    },
    {
      name: '_repositories_admin',
      description: 'Pull, push, delete and read/write metadata of every repository',
      rules: [{ repository: '*', actions: SCOPE_MAP_ACTION_NAMES }],
    },
  ] satisfies Omit<ScopeMapRecord, 'createdAt' | 'updatedAt'>[]
).map((m) => ({ ...m, createdAt: '1970-01-01T00:00:00.000Z', updatedAt: '', builtIn: true }));

/** Names of identities, tokens and scope maps: usable as a storage key segment and a username. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidIdentityName(name: string): boolean {
  return NAME_PATTERN.test(name);
}
