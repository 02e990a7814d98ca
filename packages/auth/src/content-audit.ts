import type { AuditEvent, AuditLog } from './audit-log';
import type { PrincipalKind } from './model';

/**
 * A registry domain event as the audit log reads it (structural: auth sits below the registry
 * and does not import it). See `RegistryEvent` in `@meridian/registry`.
 */
export interface AuditedChange {
  type: string;
  repository: string;
  sequence: number;
  /** ISO 8601 commit time. */
  time: string;
  actor: { kind: string; name: string; token?: string; address?: string; userAgent?: string };
  requestId?: string;
  digest?: string;
  tag?: string;
  mediaType?: string;
  size?: number;
  from?: string;
  subject?: string;
  /** A lock change's attributes (`lockChanged`, ADR 0015). */
  deleteEnabled?: boolean;
  writeEnabled?: boolean;
  readEnabled?: boolean;
  listEnabled?: boolean;
  writeOnce?: string[];
  /** A delete that went to the recycle bin (soft delete, ADR 0017). */
  softDeleted?: boolean;
  expiresAt?: string;
  /** What a retention run removed (`retentionFinished`, ADR 0021). */
  rule?: string;
  tags?: string[];
  manifests?: string[];
  bytes?: number;
}

/** The part of `RegistryEvents` the audit log plugs into: a durable subscriber. */
export interface AuditedEventSource<E extends AuditedChange> {
  attach(sub: {
    name: string;
    deliver: (e: E) => void;
    flush: () => Promise<void>;
    timeoutMs?: number;
  }): Promise<() => Promise<void>>;
}

/** Audit action of each kind of content change; a kind not listed is audited as `event.<type>`. */
const ACTIONS: Record<string, string> = {
  blobCommitted: 'blob.push',
  blobMounted: 'blob.mount',
  blobDeleted: 'blob.delete',
  manifestPut: 'manifest.push',
  manifestDeleted: 'manifest.delete',
  referrerAdded: 'referrer.add',
  tagMoved: 'tag.move',
  tagDeleted: 'tag.delete',
  lockChanged: 'lock.change',
  manifestRestored: 'manifest.restore',
  retentionFinished: 'retention.finished',
};

/** What the audit entry of a lock change adds to its detail. */
const LOCK_DETAIL = [
  'deleteEnabled',
  'writeEnabled',
  'readEnabled',
  'listEnabled',
  'writeOnce',
] as const;

const PRINCIPAL_KINDS = new Set<string>([
  'user',
  'service',
  'admin-user',
  'token',
  'anonymous',
  'node',
  'system',
]);

/** The audit entry of one content change: who (the event's actor), what, where, when. */
export function contentAuditEvent(e: AuditedChange): Omit<AuditEvent, 'region'> {
  // A tag change names the tag; any other change the digest it is about (a manifest pushed by
  // a tag still names its digest: the tag's own event follows).
  const byTag = (e.type.startsWith('tag') || e.type === 'lockChanged') && e.tag !== undefined;
  const ref = byTag ? `:${e.tag}` : e.digest !== undefined ? `@${e.digest}` : '';
  const detail: Record<string, unknown> = { repository: e.repository, sequence: e.sequence };
  for (const k of ['digest', 'tag', 'mediaType', 'size', 'from', 'subject', 'requestId'] as const)
    if (e[k] !== undefined && e[k] !== '') detail[k] = e[k];
  if (e.type === 'lockChanged')
    for (const k of LOCK_DETAIL) if (e[k] !== undefined) detail[k] = e[k];
  for (const k of ['expiresAt', 'rule', 'tags', 'manifests', 'bytes'] as const)
    if (e[k] !== undefined) detail[k] = e[k];
  const soft = e.type === 'manifestDeleted' && e.softDeleted === true;
  if (e.actor.token) detail.token = e.actor.token;
  if (e.actor.userAgent) detail.userAgent = e.actor.userAgent;
  return {
    at: e.time,
    actor: e.actor.name,
    actorKind: PRINCIPAL_KINDS.has(e.actor.kind)
      ? (e.actor.kind as PrincipalKind | 'system')
      : 'unknown',
    action: soft ? 'manifest.soft_delete' : (ACTIONS[e.type] ?? `event.${e.type}`),
    target: `${e.repository}${ref}`,
    outcome: 'success',
    ...(e.actor.address ? { address: e.actor.address } : {}),
    detail,
  };
}

/**
 * Audits every committed content change (push, mount, tag move, delete, ...) as a durable
 * subscriber of the node's domain events, named `audit`: entries are collected as they are
 * delivered and written as one object per delivered run (`flush`), before the dispatcher saves
 * the subscriber's offset — so a crash loses none (at least once: a run may be audited twice)
 * and a push's reply never waits on the audit log. Logins and administrative changes are not
 * domain events; `AuthService` and `AdminService` audit those themselves. Attach it on the
 * primary (the node where content changes are decided); a replica's events are copies of the
 * primary's changes made by the node itself.
 */
export async function attachContentAudit<E extends AuditedChange>(
  events: AuditedEventSource<E>,
  audit: AuditLog,
): Promise<() => Promise<void>> {
  let pending: Omit<AuditEvent, 'region'>[] = [];
  return events.attach({
    name: 'audit',
    deliver: (e) => {
      pending.push(contentAuditEvent(e));
    },
    flush: async () => {
      // On failure the dispatcher delivers the run again, so nothing is kept here.
      const batch = pending;
      pending = [];
      await audit.append(batch);
    },
  });
}
