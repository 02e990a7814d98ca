import { Counter, Gauge, register } from 'prom-client';

/** Auth metrics (labels are bounded: outcome, kind, method). */
export const authLogins = new Counter({
  name: 'meridian_auth_logins_total',
  help: 'Login attempts (token endpoint and Basic), by outcome and method',
  labelNames: ['outcome', 'method'] as const,
  registers: [register],
});

export const authTokensIssued = new Counter({
  name: 'meridian_auth_tokens_issued_total',
  help: 'Access tokens issued, by principal kind',
  labelNames: ['kind'] as const,
  registers: [register],
});

export const authDecisions = new Counter({
  name: 'meridian_auth_decisions_total',
  help: 'Authorization decisions on requests, by result (allowed, unauthenticated, denied, invalid_token)',
  labelNames: ['result'] as const,
  registers: [register],
});

export const authSourceReachable = new Gauge({
  name: 'meridian_auth_primary_store_reachable',
  help: '1 while this node reads credentials from the primary region, 0 while it uses its own copy',
  registers: [register],
});

export const authKdfQueue = new Gauge({
  name: 'meridian_auth_kdf_queue_length',
  help: 'Password hashes waiting for the KDF pool',
  registers: [register],
});

export const authKdfRejected = new Counter({
  name: 'meridian_auth_kdf_rejected_total',
  help: 'Logins refused with 429 because the KDF pool and its queue were full',
  registers: [register],
});
