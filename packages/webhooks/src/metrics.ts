import { Counter, Histogram, register } from 'prom-client';

/**
 * Webhook metrics. The `webhook` label is a webhook's name: operators create them one by one,
 * so the set is small and bounded like the set of regions.
 */
export const deliveriesQueued = new Counter({
  name: 'meridian_webhooks_deliveries_queued_total',
  help: 'Deliveries queued for a webhook (one per matching event and action)',
  labelNames: ['webhook'] as const,
  registers: [register],
});

export const deliveryAttempts = new Counter({
  name: 'meridian_webhooks_delivery_attempts_total',
  help: 'Delivery attempts by outcome: delivered, retrying (failed, will retry), failed (dead-lettered)',
  labelNames: ['webhook', 'outcome'] as const,
  registers: [register],
});

export const deliveryDuration = new Histogram({
  name: 'meridian_webhooks_delivery_duration_seconds',
  help: 'Time from sending a delivery to the receiver’s answer',
  labelNames: ['webhook'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [register],
});

export const deliveryLatency = new Histogram({
  name: 'meridian_webhooks_delivery_latency_seconds',
  help: 'Time from the event (commit) to its successful delivery',
  labelNames: ['webhook'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600, 3600],
  registers: [register],
});
