import { Gauge, register } from 'prom-client';
import { nodesOf, type GatewayRegion } from './topology';

export const regionUp = new Gauge({
  name: 'meridian_gateway_region_up',
  help: 'Whether the gateway considers the region healthy (one of its nodes, with storage and Redis, reachable)',
  labelNames: ['region'] as const,
  registers: [register],
});

export const regionLatency = new Gauge({
  name: 'meridian_gateway_region_latency_seconds',
  help: "Latency of the region's last deep health check (its fastest healthy node), as measured by the gateway",
  labelNames: ['region'] as const,
  registers: [register],
});

export const nodeUp = new Gauge({
  name: 'meridian_gateway_node_up',
  help: 'Whether the gateway considers a node of a region healthy (node, storage and Redis reachable)',
  labelNames: ['region', 'node'] as const,
  registers: [register],
});

export interface NodeState {
  /** The node's base URL. */
  endpoint: string;
  healthy: boolean;
  latencyMs: number | undefined;
  checkedAt: number;
  error?: string;
}

export interface RegionState {
  /** Whether one of its nodes is healthy. */
  healthy: boolean;
  /** The fastest healthy node's latency. */
  latencyMs: number | undefined;
  checkedAt: number;
  /** Why, when no node is healthy. */
  error?: string;
  nodes: NodeState[];
}

/** The `node` label of a node's metrics: its `host:port`. */
export function nodeLabel(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return endpoint;
  }
}

/**
 * Deep health of every node of every region: `GET /readyz` on the node (which checks its storage
 * and Redis), with its latency. A node is unhealthy after `failuresToDown` failed checks in a row
 * (or at once when a proxied request could not reach it), healthy again after one success. A
 * region is healthy while one of its nodes is.
 */
export class HealthChecker {
  /** Per region, its nodes' states, in the configured order. */
  private readonly nodes = new Map<string, NodeState[]>();
  private readonly failures = new Map<NodeState, number>();
  /** Nodes that left a proxied request unanswered (hung), until they answer a check again. */
  private readonly hung = new Set<NodeState>();
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
      this.nodes.set(
        r.name,
        nodesOf(r).map((endpoint) => ({
          endpoint,
          healthy: true,
          latencyMs: undefined,
          checkedAt: 0,
        })),
      );
  }

  /** Every region's state, nodes included. */
  get state(): Map<string, RegionState> {
    return new Map(this.regions.map((r) => [r.name, this.regionState(r.name)]));
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
    return (this.nodes.get(region) ?? []).some((n) => n.healthy);
  }

  /** The region's healthy nodes' URLs, in the configured order. */
  healthyNodes(region: string): string[] {
    return (this.nodes.get(region) ?? []).filter((n) => n.healthy).map((n) => n.endpoint);
  }

  latencies(): Map<string, number> {
    const m = new Map<string, number>();
    for (const r of this.regions) {
      const latency = this.regionState(r.name).latencyMs;
      if (latency !== undefined) m.set(r.name, latency);
    }
    return m;
  }

  /**
   * Marks a node failed at once (a proxied request could not reach it); without `node`, every
   * node of the region. `hung`: it accepted the request and never answered.
   */
  reportFailure(region: string, error: string, node?: string, hung = false): void {
    for (const n of this.nodes.get(region) ?? []) {
      if (node !== undefined && n.endpoint !== node) continue;
      this.failures.set(n, (this.opts.failuresToDown ?? 2) - 1);
      if (hung) this.hung.add(n);
      this.record(region, n, false, undefined, error);
    }
  }

  /**
   * Whether every node of `region` left a request unanswered and has answered nothing since
   * (not even a `503` to a check): a frozen process, which would hold the next request too.
   */
  isHung(region: string): boolean {
    const nodes = this.nodes.get(region) ?? [];
    return nodes.length > 0 && nodes.every((n) => this.hung.has(n));
  }

  async checkAll(): Promise<void> {
    await Promise.all(
      [...this.nodes].flatMap(([region, nodes]) => nodes.map((n) => this.check(region, n))),
    );
  }

  private regionState(region: string): RegionState {
    const nodes = this.nodes.get(region) ?? [];
    const healthy = nodes.filter((n) => n.healthy);
    const latencies = (healthy.length > 0 ? healthy : nodes)
      .map((n) => n.latencyMs)
      .filter((l): l is number => l !== undefined);
    return {
      healthy: healthy.length > 0,
      latencyMs: latencies.length > 0 ? Math.min(...latencies) : undefined,
      checkedAt: Math.max(0, ...nodes.map((n) => n.checkedAt)),
      error:
        healthy.length > 0
          ? undefined
          : [...new Set(nodes.map((n) => n.error).filter(Boolean))].join('; ') || undefined,
      nodes: nodes.map((n) => ({ ...n })),
    };
  }

  private async check(region: string, n: NodeState): Promise<void> {
    const started = performance.now();
    try {
      const res = await fetch(`${n.endpoint}/readyz`, {
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 1500),
      });
      this.hung.delete(n); // it answers (if only to say it is not ready)
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`readyz answered ${res.status}`);
      this.failures.set(n, 0);
      this.record(region, n, true, performance.now() - started);
    } catch (err) {
      const count = (this.failures.get(n) ?? 0) + 1;
      this.failures.set(n, count);
      if (count >= (this.opts.failuresToDown ?? 2))
        this.record(region, n, false, undefined, (err as Error).message);
    }
  }

  private record(
    region: string,
    n: NodeState,
    healthy: boolean,
    latencyMs: number | undefined,
    error?: string,
  ): void {
    n.healthy = healthy;
    if (latencyMs !== undefined) n.latencyMs = latencyMs;
    n.checkedAt = Date.now();
    n.error = error;
    nodeUp.set({ region, node: nodeLabel(n.endpoint) }, healthy ? 1 : 0);
    const state = this.regionState(region);
    regionUp.set({ region }, state.healthy ? 1 : 0);
    if (state.latencyMs !== undefined) regionLatency.set({ region }, state.latencyMs / 1000);
  }
}
