import { Counter, Histogram, register } from 'prom-client';

/** Every storage metric, in the prom-client default registry. */

type Status = 'ok' | 'not_found' | 'error' | 'body_error';

function existing<T>(name: string): T | undefined {
  // A second copy of this module (e.g. src and dist both loaded) must not throw on re-register.
  return register.getSingleMetric(name) as T | undefined;
}

export const storageOperations =
  existing<Counter<'driver' | 'operation' | 'status'>>('meridian_storage_operations_total') ??
  new Counter({
    name: 'meridian_storage_operations_total',
    help: "Object-store operations by driver, operation and outcome (ok, not_found, error; body_error: the writer's body failed, not the backend).",
    labelNames: ['driver', 'operation', 'status'] as const,
  });

export const storageOperationDuration =
  existing<Histogram<'driver' | 'operation'>>('meridian_storage_operation_duration_seconds') ??
  new Histogram({
    name: 'meridian_storage_operation_duration_seconds',
    help: 'Object-store operation latency (for get: until the body starts streaming).',
    labelNames: ['driver', 'operation'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });

export const storageBytesWritten =
  existing<Counter<'driver'>>('meridian_storage_bytes_written_total') ??
  new Counter({
    name: 'meridian_storage_bytes_written_total',
    help: 'Bytes committed by put.',
    labelNames: ['driver'] as const,
  });

export const storageBytesRead =
  existing<Counter<'driver'>>('meridian_storage_bytes_read_total') ??
  new Counter({
    name: 'meridian_storage_bytes_read_total',
    help: 'Bytes delivered by get and getBytes, counted as the body streams.',
    labelNames: ['driver'] as const,
  });

export const storageCorruptBlobsReplaced =
  existing<Counter<'driver'>>('meridian_storage_corrupt_blobs_replaced_total') ??
  new Counter({
    name: 'meridian_storage_corrupt_blobs_replaced_total',
    help: 'Stored blobs found with a size their digest does not have, replaced by a verified upload.',
    labelNames: ['driver'] as const,
  });

/** Records one finished operation. */
export function recordStorageOperation(
  driver: string,
  operation: string,
  status: Status,
  seconds: number,
): void {
  storageOperations.inc({ driver, operation, status });
  storageOperationDuration.observe({ driver, operation }, seconds);
}

export const staleTempsRemoved =
  existing<Counter<'driver'>>('meridian_storage_stale_temps_removed_total') ??
  new Counter({
    name: 'meridian_storage_stale_temps_removed_total',
    help: 'Temp files, staging objects and incomplete multipart uploads that a killed write left under a stable temp name, removed when the write ran again.',
    labelNames: ['driver'] as const,
  });
