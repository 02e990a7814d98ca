import { userInfo } from 'node:os';
import type { Logger } from 'pino';
import type { ObjectStore } from '@meridian/storage';
import { AdminService } from './admin-service';
import { AuditLog } from './audit-log';
import { CredentialStore } from './credential-store';

export interface ResetOwnerOptions {
  /** The primary region's store (the source of truth of credentials). */
  store: ObjectStore;
  /** The region the audit event is written under. */
  region: string;
  /** The registry's name (the admin user's username). Default `meridian`. */
  registryName?: string;
  /** The new password; default: a generated one, returned. */
  password?: string;
  log: Logger;
}

/**
 * Offline recovery of access (`meridian admin reset-owner`): with the primary region's store
 * and no login, gives the `owner` user a new password, enables it and makes it an Owner of the
 * registry again (see `AdminService.resetOwner`). Running nodes pick it up within their poll
 * interval. Audited as done by the operating-system user who ran it.
 */
export async function resetOwner(
  opts: ResetOwnerOptions,
): Promise<{ name: string; password?: string }> {
  const credentials = new CredentialStore({ source: opts.store, local: opts.store, log: opts.log });
  const audit = new AuditLog({ store: opts.store, region: opts.region, log: opts.log });
  try {
    await credentials.start();
    if (!credentials.sourceReachable)
      throw new Error('cannot read the credential records in this storage');
    const admin = new AdminService(credentials, audit, opts.registryName ?? 'meridian');
    let who = 'operator';
    try {
      who = userInfo().username;
    } catch {
      // no passwd entry (containers): keep "operator"
    }
    return await admin.resetOwner(
      { principal: { kind: 'node', name: `reset-owner:${who}` }, address: '-' },
      opts.password,
    );
  } finally {
    credentials.close();
    await audit.close();
  }
}
