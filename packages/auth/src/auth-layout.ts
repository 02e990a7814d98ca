/**
 * Where auth data lives in a region's object store. `_auth/` is the replicated part (hashed
 * credentials, scope maps, settings, public keys): the primary region's copy is the source of
 * truth and every node mirrors it into its own region's store. `_auth-signing/` (a region's
 * private signing key) and `_audit/` (each region's own audit events) are never copied.
 */
export const AuthLayout = {
  root: '_auth/',
  /** Changes on every write; nodes poll it to notice changes. */
  rev: '_auth/rev',
  /** Written once the first start created the owner (so deleting it later does not re-create it). */
  initialized: '_auth/initialized',
  settings: '_auth/settings',
  adminUser: '_auth/admin-user',
  identitiesRoot: '_auth/identities/',
  identity: (name: string) => `_auth/identities/${name}`,
  tokensRoot: '_auth/tokens/',
  token: (name: string) => `_auth/tokens/${name}`,
  scopeMapsRoot: '_auth/scope-maps/',
  scopeMap: (name: string) => `_auth/scope-maps/${name}`,
  keysRoot: '_auth/keys/',
  publicKey: (kid: string) => `_auth/keys/${kid}`,
  signingKey: (region: string) => `_auth-signing/${region}/key`,
  auditRegion: (region: string) => `_audit/${region}/`,
  auditDay: (region: string, day: string) => `_audit/${region}/${day}/`,
} as const;
