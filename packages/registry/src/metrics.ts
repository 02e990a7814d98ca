import { Counter, Gauge, Histogram, register } from 'prom-client';

/** The metrics of a registry node, all in this module. HTTP ones: Labels are bounded: route template, method, status class. */
export const httpRequests = new Counter({
  name: 'meridian_http_requests_total',
  help: 'HTTP requests served, by route template, method and status class',
  labelNames: ['route', 'method', 'status'] as const,
  registers: [register],
});

export const httpDuration = new Histogram({
  name: 'meridian_http_request_duration_seconds',
  help: 'Time to the end of the response, by route template and method',
  labelNames: ['route', 'method'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [register],
});

export const httpBytesSent = new Counter({
  name: 'meridian_http_response_bytes_total',
  help: 'Response body bytes declared by Content-Length, by route template',
  labelNames: ['route'] as const,
  registers: [register],
});

export const httpStalledBodies = new Counter({
  name: 'meridian_http_stalled_bodies_total',
  help: 'Connections closed because the client stopped sending a request body it had announced',
  registers: [register],
});

/** Replica reads that went to the primary (the one fallback counter; replication's has none). */
export const replicaFallbacks = new Counter({
  name: 'meridian_replica_fallbacks_total',
  help: 'Replica reads served from the primary because the object was not in the region yet',
  labelNames: ['kind'] as const,
  registers: [register],
});

export const replicaStaleReads = new Counter({
  name: 'meridian_replica_stale_tag_reads_total',
  help: 'Tag reads answered from the region although the tag was behind and the primary was unreachable',
  registers: [register],
});

export const replicaFallbackCopyFailures = new Counter({
  name: 'meridian_replica_fallback_copy_failures_total',
  help: 'Fallback blobs whose copy into the region failed or stalled; the client was served from the primary regardless',
  registers: [register],
});

export const replicaFallbackUpstreamFailures = new Counter({
  name: 'meridian_replica_fallback_upstream_failures_total',
  help: "Fallback blob streams from the primary that failed, ended short or stalled; the client's response was aborted",
  registers: [register],
});

/** Domain events journaled on this node, by kind (ADR 0010). */
export const eventsJournaled = new Counter({
  name: 'meridian_events_journaled_total',
  help: 'Domain events journaled on this node, by kind',
  labelNames: ['kind'] as const,
  registers: [register],
});

/** Journaled events a durable subscriber has not acknowledged yet (set on scrape). */
export const eventsLag = new Gauge({
  name: 'meridian_events_subscriber_lag_events',
  help: 'Journaled domain events each durable subscriber has not acknowledged yet',
  labelNames: ['subscriber'] as const,
  registers: [register],
});
