import { Gauge, register } from 'prom-client';
import type { GatewayRegion } from './topology';

export const regionUp = new Gauge({
  name: 'meridian_gateway_region_up',
  help: 'Whether the gateway considers the region healthy (node, storage and Redis reachable)',
  labelNames: ['region'] as const,
  registers: [register],
});

export const regionLatency = new Gauge({
  name: 'meridian_gateway_region_latency_seconds',
  help: "Latency of the region's last deep health check, as measured by the gateway",
  labelNames: ['region'] as const,
  registers: [register],
});

export interface RegionState {
  healthy: boolean;
  latencyMs: number | undefined;
  checkedAt: number;
  error?: string;
}

/**
 * Deep health of every region: `GET /readyz` on the region's node (which checks its storage and
 * Redis), with its latency. A region is unhealthy after `failuresToDown` failed checks in a row,
 * healthy again after one success.
 */
export class HealthChecker {
  readonly state = new Map<string, RegionState>();
  private readonly failures = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly regions: GatewayRegion[],
    private readonly opts: {
      intervalMs?: number;
      timeoutMs?: number;
      failuresToDown?: number;
    } = {},
  ) {
    for (const r of regions)
      this.state.set(r.name, { healthy: true, latencyMs: undefined, checkedAt: 0 });
  }

  start(): void {
    void this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  isHealthy(region: string): boolean {
    return this.state.get(region)?.healthy ?? false;
  }

  latencies(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [k, v] of this.state) if (v.latencyMs !== undefined) m.set(k, v.latencyMs);
    return m;
  }

  /** Marks a region failed at once (a proxied request could not connect). */
  reportFailure(region: string, error: string): void {
    this.failures.set(region, (this.opts.failuresToDown ?? 2) - 1);
    this.record(region, false, undefined, error);
  }

  async checkAll(): Promise<void> {
    await Promise.all(this.regions.map((r) => this.check(r)));
  }

  private async check(r: GatewayRegion): Promise<void> {
    const started = performance.now();
    try {
      const res = await fetch(`${r.endpoint}/readyz`, {
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 1500),
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`readyz answered ${res.status}`);
      this.failures.set(r.name, 0);
      this.record(r.name, true, performance.now() - started);
    } catch (err) {
      const n = (this.failures.get(r.name) ?? 0) + 1;
      this.failures.set(r.name, n);
      if (n >= (this.opts.failuresToDown ?? 2))
        this.record(r.name, false, undefined, (err as Error).message);
    }
  }

  private record(
    region: string,
    healthy: boolean,
    latencyMs: number | undefined,
    error?: string,
  ): void {
    const prev = this.state.get(region);
    this.state.set(region, {
      healthy,
      latencyMs: latencyMs ?? prev?.latencyMs,
      checkedAt: Date.now(),
      error,
    });
    regionUp.set({ region }, healthy ? 1 : 0);
    if (latencyMs !== undefined) regionLatency.set({ region }, latencyMs / 1000);
  }
}
