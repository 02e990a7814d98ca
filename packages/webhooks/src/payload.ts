import { createHash } from 'node:crypto';
import type { PayloadFormat, WebhookAction } from './definition';

/** A registry domain event as webhooks read it (structural: no import of the registry). */
export interface WebhookEvent {
  type: string;
  repository: string;
  sequence: number;
  region: string;
  /** ISO 8601 commit time. */
  time: string;
  actor: { kind: string; name: string; userAgent?: string; address?: string };
  requestId?: string;
  digest?: string;
  tag?: string;
  mediaType?: string;
  size?: number;
  /** `lockChanged`: the lock's attributes after the change. */
  deleteEnabled?: boolean;
  writeEnabled?: boolean;
  readEnabled?: boolean;
  listEnabled?: boolean;
  writeOnce?: string[];
  /** `manifestDeleted`: it went to the recycle bin, restorable until `expiresAt`. */
  softDeleted?: boolean;
  expiresAt?: string;
  /** `retentionFinished`: the rule and what it removed from the repository. */
  rule?: string;
  tags?: string[];
  manifests?: string[];
  bytes?: number;
  /** `importFinished`: where the image came from (`registry/repo:tag`). */
  source?: string;
}

/** Which actions each domain event fires. Events not listed fire none. */
const EVENT_ACTIONS: Record<string, WebhookAction[]> = {
  manifestPut: ['push', 'replicated'],
  manifestDeleted: ['delete'],
  manifestRestored: ['restore'],
  tagDeleted: ['tag_delete'],
  lockChanged: ['lock_changed'],
  retentionFinished: ['retention_finished'],
  importFinished: ['import_finished'],
};

/** The actions an event fires; a delete that went to the recycle bin also fires `soft_delete`. */
export function actionsOf(
  e: string | Pick<WebhookEvent, 'type' | 'softDeleted'>,
): readonly WebhookAction[] {
  const type = typeof e === 'string' ? e : e.type;
  const actions = EVENT_ACTIONS[type] ?? [];
  return typeof e !== 'string' && e.type === 'manifestDeleted' && e.softDeleted
    ? [...actions, 'soft_delete']
    : actions;
}

/** ACR's webhook payload, plus `actor` and `region` (and `regions` for `replicated`). */
export interface Notification {
  id: string;
  timestamp: string;
  action: string;
  target: {
    mediaType?: string;
    size?: number;
    digest?: string;
    length?: number;
    repository: string;
    tag?: string;
  };
  request: { id: string; host: string; method: string; useragent: string };
  actor: { kind: string; name: string };
  region: string;
  /** `replicated`: when each region could serve the image. */
  regions?: { region: string; replicatedAt: string | null }[];
  /** `lock_changed`: the lock's attributes after the change (ACR's changeableAttributes). */
  lock?: {
    deleteEnabled?: boolean;
    writeEnabled?: boolean;
    readEnabled?: boolean;
    listEnabled?: boolean;
    writeOnce?: string[];
  };
  /** `soft_delete`: until when the manifest can be restored. */
  softDelete?: { expiresAt: string };
  /** `retention_finished`: the rule and what it removed from `target.repository`. */
  retention?: { rule: string; tags: string[]; manifests: string[]; bytes: number };
  /** `import_finished`: where the image was imported from. */
  import?: { source: string };
}

/**
 * The notification of `action` for `e`. Its `id` is stable for one (event, action) — derived
 * from the node's region, the event's journal sequence and time — so a redelivered or replayed
 * event carries the id the receiver saw before.
 */
export function notificationOf(e: WebhookEvent, action: string, host: string): Notification {
  const size = e.type === 'manifestPut' ? e.size : undefined;
  const target: Notification['target'] = {
    ...(e.mediaType !== undefined && { mediaType: e.mediaType }),
    ...(size !== undefined && { size }),
    ...(e.digest !== undefined && { digest: e.digest }),
    ...(size !== undefined && { length: size }),
    repository: e.repository,
    ...(e.tag !== undefined && { tag: e.tag }),
  };
  return {
    id: stableId(`${e.region}\n${e.sequence}\n${e.time}\n${action}`),
    timestamp: e.time,
    action,
    target,
    request: {
      id: e.requestId ?? '',
      host,
      method: METHODS[e.type] ?? 'DELETE',
      useragent: e.actor.userAgent ?? '',
    },
    actor: { kind: e.actor.kind, name: e.actor.name },
    region: e.region,
    ...(e.type === 'lockChanged' && {
      lock: {
        deleteEnabled: e.deleteEnabled,
        writeEnabled: e.writeEnabled,
        readEnabled: e.readEnabled,
        listEnabled: e.listEnabled,
        ...(e.writeOnce && { writeOnce: e.writeOnce }),
      },
    }),
    ...(action === 'soft_delete' && e.expiresAt && { softDelete: { expiresAt: e.expiresAt } }),
    ...(e.type === 'importFinished' && { import: { source: e.source ?? '' } }),
    ...(e.type === 'retentionFinished' && {
      retention: {
        rule: e.rule ?? '',
        tags: e.tags ?? [],
        manifests: e.manifests ?? [],
        bytes: e.bytes ?? 0,
      },
    }),
  };
}

/** The request method that made each kind of change (`request.method`). */
const METHODS: Record<string, string> = { manifestPut: 'PUT', lockChanged: 'PUT' };

/** A test notification (`meridian webhook ping`). */
export function pingNotification(host: string, region: string, now = new Date()): Notification {
  return {
    id: stableId(`ping\n${now.toISOString()}\n${Math.random()}`),
    timestamp: now.toISOString(),
    action: 'ping',
    target: { repository: '' },
    request: { id: '', host, method: 'POST', useragent: '' },
    actor: { kind: 'system', name: 'meridian' },
    region,
  };
}

/** The request body and its content type in the webhook's format. */
export function encode(n: Notification, format: PayloadFormat): { body: string; type: string } {
  if (format === 'cloudevents') {
    const t = n.target;
    const subject = t.tag
      ? `${t.repository}:${t.tag}`
      : t.digest
        ? `${t.repository}@${t.digest}`
        : t.repository;
    return {
      type: 'application/cloudevents+json',
      body: JSON.stringify({
        specversion: '1.0',
        id: n.id,
        source: `https://${n.request.host}/v2/${t.repository}`,
        type: `io.meridian.registry.${n.action}`,
        subject,
        time: n.timestamp,
        datacontenttype: 'application/json',
        data: n,
      }),
    };
  }
  if (format === 'distribution') {
    const event = {
      id: n.id,
      timestamp: n.timestamp,
      action: n.action === 'tag_delete' ? 'delete' : n.action,
      target: n.target,
      request: { ...n.request, addr: '' },
      actor: { name: n.actor.name },
      source: { addr: n.request.host, instanceID: n.region },
      ...(n.regions && { regions: n.regions }),
    };
    return {
      type: 'application/vnd.docker.distribution.events.v1+json',
      body: JSON.stringify({ events: [event] }),
    };
  }
  return { type: 'application/json', body: JSON.stringify(n) };
}

/** A UUID-shaped id derived from `seed` (same seed, same id). */
export function stableId(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
