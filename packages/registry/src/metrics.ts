import { Counter, Histogram, register } from 'prom-client';

/** HTTP metrics of a registry node. Labels are bounded: route template, method, status class. */
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
