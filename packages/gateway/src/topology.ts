import ipaddr from 'ipaddr.js';

export interface GatewayRegion {
  name: string;
  role: 'primary' | 'replica';
  /** Base URL of the region (its load balancer, or its one node). */
  endpoint: string;
  /**
   * Base URLs of the region's nodes, when the gateway itself spreads the region's requests across
   * them (each health-checked on its own). Default: `[endpoint]`.
   */
  nodes?: string[];
}

/** The URLs the gateway sends a region's requests to: its `nodes`, else its `endpoint`. */
export function nodesOf(region: GatewayRegion): string[] {
  return region.nodes && region.nodes.length > 0 ? region.nodes : [region.endpoint];
}

export interface ClientRule {
  /** e.g. `10.1.0.0/16` or `127.0.0.2/32` */
  cidr: string;
  region: string;
}

export interface TopologyOptions {
  regions: GatewayRegion[];
  /** Source (or, with `matchOn: 'destination'`, local) address → home region, first match wins. */
  clients?: ClientRule[];
  /** Home region of a client no rule matches. Default: the primary. */
  defaultRegion?: string;
  /**
   * Per home region, the regions to try for reads in order. Default: the home region, then the
   * others by measured latency.
   */
  preference?: Record<string, string[]>;
  /** Match client rules on the client's address (geo-DNS style) or the address it connected to. */
  matchOn?: 'source' | 'destination';
}

type Parsed = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Maps clients to home regions and orders the regions a read may go to. */
export class Topology {
  readonly regions: GatewayRegion[];
  readonly primary: GatewayRegion;
  private readonly rules: { range: Parsed; region: string }[];
  private readonly byName: Map<string, GatewayRegion>;

  constructor(readonly opts: TopologyOptions) {
    this.regions = opts.regions;
    const primary = opts.regions.find((r) => r.role === 'primary');
    if (!primary) throw new Error('the gateway needs exactly one primary region');
    this.primary = primary;
    this.byName = new Map(opts.regions.map((r) => [r.name, r]));
    const names = new Set(opts.regions.map((r) => r.name));
    this.rules = (opts.clients ?? []).map((c) => {
      if (!names.has(c.region))
        throw new Error(`client rule ${c.cidr} names unknown region ${c.region}`);
      return { range: ipaddr.parseCIDR(c.cidr), region: c.region };
    });
    if (opts.defaultRegion && !names.has(opts.defaultRegion))
      throw new Error(`defaultRegion ${opts.defaultRegion} is not a region`);
  }

  /** The home region of a client address. */
  homeOf(address: string | undefined): string {
    if (address) {
      let ip: ipaddr.IPv4 | ipaddr.IPv6;
      try {
        ip = ipaddr.process(address);
      } catch {
        return this.opts.defaultRegion ?? this.primary.name;
      }
      for (const r of this.rules) {
        if (ip.kind() === r.range[0].kind() && ip.match(r.range)) return r.region;
      }
    }
    return this.opts.defaultRegion ?? this.primary.name;
  }

  /** Regions to try for a read from `home`, best first, given latencies (ms) where known. */
  readOrder(home: string, latency: Map<string, number>): GatewayRegion[] {
    const pref = this.opts.preference?.[home];
    if (pref) {
      const listed = pref.map((n) => this.byName.get(n)).filter((r): r is GatewayRegion => !!r);
      const rest = this.regions.filter((r) => !pref.includes(r.name));
      return [...listed, ...rest];
    }
    const others = this.regions
      .filter((r) => r.name !== home)
      .sort((a, b) => (latency.get(a.name) ?? Infinity) - (latency.get(b.name) ?? Infinity));
    const own = this.byName.get(home);
    return own ? [own, ...others] : others;
  }
}
