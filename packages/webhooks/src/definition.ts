import { randomBytes } from 'node:crypto';
import { OciError } from '@meridian/oci';
import { parseScope } from './scope';

/**
 * ACR's actions plus Meridian's. `quarantine`, `retention_finished`, `soft_delete`, `restore`
 * and `import_finished` are accepted and reserved: they fire once the features that emit them
 * exist (a line in payload.ts's event table).
 */
export const WEBHOOK_ACTIONS = [
  'push',
  'delete',
  'tag_delete',
  'replicated',
  'quarantine',
  'lock_changed',
  'retention_finished',
  'soft_delete',
  'restore',
  'import_finished',
] as const;
export type WebhookAction = (typeof WEBHOOK_ACTIONS)[number];

export const PAYLOAD_FORMATS = ['acr', 'cloudevents', 'distribution'] as const;
export type PayloadFormat = (typeof PAYLOAD_FORMATS)[number];

export interface WebhookSecret {
  /** `whsec_<base64>` (Standard Webhooks); the HMAC key is the decoded part. */
  value: string;
  createdAt: string;
}

/** A webhook as stored (the object store holds it whole; reads mask `url`, `headers`, secrets). */
export interface Webhook {
  name: string;
  url: string;
  actions: WebhookAction[];
  /** ACR grammar plus globs (see scope.ts); `''` is everything. */
  scope: string;
  headers: Record<string, string>;
  status: 'enabled' | 'disabled';
  /** `global` fires at the commit on the primary; a region name fires once that region shows it. */
  location: string;
  format: PayloadFormat;
  /** `replicated`: the regions that must serve the image before it fires. Empty: every region. */
  regions: string[];
  /** The current secret first; a rotated-out one stays second, so receivers can switch over. */
  secrets: WebhookSecret[];
  createdAt: string;
  updatedAt: string;
}

/** What create and update accept (update: only the fields given change). */
export interface WebhookInput {
  name?: unknown;
  url?: unknown;
  actions?: unknown;
  scope?: unknown;
  headers?: unknown;
  status?: unknown;
  location?: unknown;
  format?: unknown;
  regions?: unknown;
  /** A secret to use instead of a generated one (`whsec_…`, or any string of 16+ characters). */
  secret?: unknown;
  /** Update only: make a new secret current and keep the old one as the second. */
  rotateSecret?: unknown;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$/;
/** Header names a webhook may not set: the signature, framing and hop-by-hop headers are ours. */
const RESERVED_HEADERS =
  /^(content-length|content-type|host|connection|transfer-encoding|te|upgrade|keep-alive|expect|webhook-(id|timestamp|signature)|user-agent)$/i;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

export const invalid = (msg: string): OciError => new OciError('UNSUPPORTED', msg, undefined, 400);

export function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** The HMAC key of a secret: the base64 part of `whsec_…`, else the string's bytes. */
export function secretKey(secret: string): Buffer {
  return secret.startsWith('whsec_')
    ? Buffer.from(secret.slice(6), 'base64')
    : Buffer.from(secret, 'utf8');
}

export function validName(v: unknown): string {
  if (typeof v !== 'string' || !NAME.test(v))
    throw invalid('name: 1-50 letters, digits, - or _, starting with a letter or digit');
  return v;
}

/** Checks and normalises the fields of `input` over `base` (create: defaults; update: stored). */
export function applyInput(
  base: Webhook,
  input: WebhookInput,
  regions: readonly string[],
  now = new Date(),
): Webhook {
  const w: Webhook = { ...base, updatedAt: now.toISOString() };
  if (input.url !== undefined) w.url = validUrl(input.url);
  if (input.actions !== undefined) {
    const a = input.actions;
    if (!Array.isArray(a) || a.length === 0 || !a.every(isAction))
      throw invalid(`actions: one or more of ${WEBHOOK_ACTIONS.join(', ')}`);
    w.actions = [...new Set(a)];
  }
  if (input.scope !== undefined) {
    if (typeof input.scope !== 'string') throw invalid('scope: a string');
    try {
      parseScope(input.scope);
    } catch (err) {
      throw invalid((err as Error).message);
    }
    w.scope = input.scope.trim();
  }
  if (input.headers !== undefined) w.headers = validHeaders(input.headers);
  if (input.status !== undefined) {
    if (input.status !== 'enabled' && input.status !== 'disabled')
      throw invalid('status: enabled or disabled');
    w.status = input.status;
  }
  if (input.location !== undefined) {
    if (input.location !== 'global' && !regions.includes(input.location as string))
      throw invalid(`location: global or one of the regions (${regions.join(', ') || 'none'})`);
    w.location = input.location as string;
  }
  if (input.format !== undefined) {
    if (!PAYLOAD_FORMATS.includes(input.format as PayloadFormat))
      throw invalid(`format: one of ${PAYLOAD_FORMATS.join(', ')}`);
    w.format = input.format as PayloadFormat;
  }
  if (input.regions !== undefined) {
    const r = input.regions;
    if (!Array.isArray(r) || !r.every((x) => typeof x === 'string' && regions.includes(x)))
      throw invalid(`regions: some of ${regions.join(', ') || 'none'} (empty: every region)`);
    w.regions = [...new Set(r as string[])];
  }
  if (input.secret !== undefined || input.rotateSecret === true) {
    const value = input.secret === undefined ? newSecret() : validSecret(input.secret);
    const current = input.rotateSecret === true ? w.secrets.slice(0, 1) : [];
    w.secrets = [{ value, createdAt: now.toISOString() }, ...current];
  }
  if (!w.url) throw invalid('url is required');
  return w;
}

/** A new webhook from `input`. Defaults: actions `push`, scope everything, enabled, global, ACR payload, a generated secret. */
export function createWebhook(
  input: WebhookInput,
  regions: readonly string[],
  now = new Date(),
): Webhook {
  const base: Webhook = {
    name: validName(input.name),
    url: '',
    actions: ['push'],
    scope: '',
    headers: {},
    status: 'enabled',
    location: 'global',
    format: 'acr',
    regions: [],
    secrets: [{ value: newSecret(), createdAt: now.toISOString() }],
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  return applyInput(base, { ...input, rotateSecret: undefined }, regions, now);
}

/** A webhook as reads show it: the URL's path and query, header values and secrets masked. */
export function masked(w: Webhook): Record<string, unknown> {
  const { secrets, url, headers, ...rest } = w;
  return {
    ...rest,
    url: maskUrl(url),
    headers: Object.fromEntries(Object.keys(headers).map((k) => [k, '***'])),
    secrets: secrets.map((s) => ({ createdAt: s.createdAt })),
  };
}

export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/***`;
  } catch {
    return '***';
  }
}

function isAction(v: unknown): v is WebhookAction {
  return WEBHOOK_ACTIONS.includes(v as WebhookAction);
}

function validUrl(v: unknown): string {
  if (typeof v !== 'string' || v.length > 2048) throw invalid('url: an http(s) URL');
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw invalid('url: an http(s) URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid('url: http or https');
  if (u.username || u.password)
    throw invalid('url: no credentials in the URL; use a custom header');
  return u.toString();
}

function validHeaders(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalid('headers: an object of name → value');
  const out: Record<string, string> = {};
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 20) throw invalid('headers: at most 20');
  for (const [k, val] of entries) {
    if (!TOKEN.test(k)) throw invalid(`headers: invalid header name ${k.slice(0, 64)}`);
    if (RESERVED_HEADERS.test(k)) throw invalid(`headers: ${k} is set by Meridian`);
    if (typeof val !== 'string' || val.length > 4096 || /[\r\n\0]/.test(val))
      throw invalid(`headers: the value of ${k} must be one line of text`);
    out[k] = val;
  }
  return out;
}

function validSecret(v: unknown): string {
  if (typeof v !== 'string' || v.length < 16 || v.length > 256 || /\s/.test(v))
    throw invalid('secret: 16-256 characters without spaces (whsec_… or any string)');
  if (v.startsWith('whsec_') && secretKey(v).length < 16)
    throw invalid('secret: a whsec_ secret holds at least 16 bytes of base64');
  return v;
}
