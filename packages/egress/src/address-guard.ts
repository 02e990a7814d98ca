import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

type Family = 'ipv4' | 'ipv6';
type Range = readonly [address: string, bits: number, family: Family];

/**
 * The address ranges a guard can refuse or allow by name, each with how a refusal names it.
 * `metadata` are the cloud providers' instance-metadata and host endpoints (AWS, GCP, Azure,
 * OpenStack, DigitalOcean, Oracle: 169.254.169.254; AWS ECS task metadata 169.254.170.2; AWS
 * IMDS over IPv6 fd00:ec2::254; Alibaba 100.100.100.200; Azure WireServer 168.63.129.16; Oracle
 * Classic 192.0.0.192) — several of them outside the link-local range.
 */
export const NAMED_RANGES = {
  metadata: {
    label: 'a cloud metadata address',
    ranges: [
      ['169.254.169.254', 32, 'ipv4'],
      ['169.254.170.2', 32, 'ipv4'],
      ['100.100.100.200', 32, 'ipv4'],
      ['168.63.129.16', 32, 'ipv4'],
      ['192.0.0.192', 32, 'ipv4'],
      ['fd00:ec2::254', 128, 'ipv6'],
    ],
  },
  unspecified: {
    label: 'an unspecified address',
    ranges: [
      ['0.0.0.0', 8, 'ipv4'],
      ['::', 128, 'ipv6'],
    ],
  },
  linklocal: {
    label: 'a link-local address',
    ranges: [
      ['169.254.0.0', 16, 'ipv4'],
      ['fe80::', 10, 'ipv6'],
    ],
  },
  loopback: {
    label: 'a loopback address',
    ranges: [
      ['127.0.0.0', 8, 'ipv4'],
      ['::1', 128, 'ipv6'],
    ],
  },
  private: {
    label: 'a private-network address',
    ranges: [
      ['10.0.0.0', 8, 'ipv4'],
      ['172.16.0.0', 12, 'ipv4'],
      ['192.168.0.0', 16, 'ipv4'],
      ['100.64.0.0', 10, 'ipv4'],
      ['fc00::', 7, 'ipv6'],
    ],
  },
  multicast: {
    label: 'a multicast address',
    ranges: [
      ['224.0.0.0', 4, 'ipv4'],
      ['ff00::', 8, 'ipv6'],
    ],
  },
  reserved: {
    label: 'a reserved address',
    ranges: [
      ['192.0.0.0', 24, 'ipv4'],
      ['198.18.0.0', 15, 'ipv4'],
      ['240.0.0.0', 4, 'ipv4'],
    ],
  },
} satisfies Record<string, { label: string; ranges: Range[] }>;

export type RangeName = keyof typeof NAMED_RANGES;

/** A connection the guard refused: `code` lets an HTTP client's caller tell it from a network error. */
export class AddressRefusedError extends Error {
  readonly code = 'ETARGETREFUSED';
  constructor(
    message: string,
    /** The refused address. */
    readonly address: string,
  ) {
    super(message);
  }
}

export interface AddressGuardOptions {
  /** What is refused: range names (`loopback`, `metadata`, …), addresses or CIDR ranges. */
  deny: readonly string[];
  /** What is permitted inside the refused ranges: range names, addresses or CIDR ranges. */
  allow?: readonly string[];
  /** How a refusal names the range, when not by the range's own label. */
  label?: string;
  /** Resolves a name to all its addresses. Default `dns.lookup` (tests pass a fake one). */
  resolve?: (
    hostname: string,
    family: number | undefined,
    callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
  ) => void;
}

const systemResolve: NonNullable<AddressGuardOptions['resolve']> = (hostname, family, cb) =>
  dnsLookup(hostname, { all: true, ...(family && { family }) }, cb);

/**
 * Decides which addresses an outbound connection may reach (the SSRF guard of webhooks and of
 * upstream registries). An address is refused when it is in a `deny` range and in no `allow`
 * range. An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, NAT64
 * `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`, IPv4-compatible `::a.b.c.d`) is refused when
 * either is. The check holds at connect time: `lookup` refuses a name any of whose addresses is
 * refused (DNS rebinding), `checkLiteral` an IP written in the URL.
 */
export class AddressGuard {
  private readonly denied: { label: string; list: BlockList }[] = [];
  private readonly allowed = new BlockList();

  constructor(private readonly opts: AddressGuardOptions) {
    for (const spec of opts.deny) {
      const list = new BlockList();
      const named = namedRange(spec);
      for (const [a, bits, family] of named?.ranges ?? [parseCidr(spec)])
        list.addSubnet(a, bits, family);
      this.denied.push({ label: named?.label ?? `in the refused range ${spec}`, list });
    }
    for (const spec of opts.allow ?? [])
      for (const [a, bits, family] of namedRange(spec)?.ranges ?? [parseCidr(spec)])
        this.allowed.addSubnet(a, bits, family);
  }

  /** Why `address` (an IP) may not be connected to — `a link-local address` — or undefined. */
  refusal(address: string): string | undefined {
    for (const a of [address, embeddedIpv4(address)]) {
      if (a === undefined) continue;
      const family = isIP(a) === 6 ? 'ipv6' : 'ipv4';
      if (this.allowed.check(a, family)) continue;
      const hit = this.denied.find((d) => d.list.check(a, family));
      if (hit) return this.opts.label ?? hit.label;
    }
    return undefined;
  }

  /** True when `address` (an IP) may be connected to. */
  permits(address: string): boolean {
    return this.refusal(address) === undefined;
  }

  /** Throws `AddressRefusedError` when `host` (a URL's hostname) is an IP that is refused. */
  checkHost(host: string): void {
    const ip = host.replace(/^\[|\]$/g, '');
    if (!isIP(ip)) return;
    const why = this.refusal(ip);
    if (why) throw new AddressRefusedError(`${ip} is ${why}`, ip);
  }

  /** Throws `AddressRefusedError` when the URL's host is an IP literal that is refused. */
  checkLiteral(url: URL): void {
    this.checkHost(url.hostname);
  }

  /** A `lookup` for net/tls/http(s) connections that refuses names resolving into a refused range. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const f = options.family;
    const family = f === 'IPv4' ? 4 : f === 'IPv6' ? 6 : f || undefined;
    (this.opts.resolve ?? systemResolve)(hostname, family, (err, addresses) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      for (const a of addresses) {
        const why = this.refusal(a.address);
        if (why) {
          callback(
            new AddressRefusedError(`${hostname} resolves to ${a.address}, ${why}`, a.address),
            '',
            0,
          );
          return;
        }
      }
      if (addresses.length === 0) {
        callback(new AddressRefusedError(`${hostname} resolves to nothing`, ''), '', 0);
        return;
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

function namedRange(spec: string): { label: string; ranges: readonly Range[] } | undefined {
  return Object.hasOwn(NAMED_RANGES, spec) ? NAMED_RANGES[spec as RangeName] : undefined;
}

/** `a.b.c.d/n` or `x::y/n` (a bare address is /32 or /128); throws naming the bad entry. */
export function parseCidr(spec: string): Range {
  const [addr = '', bits, extra] = spec.split('/');
  const v = isIP(addr);
  if (v === 0 || extra !== undefined)
    throw new Error(
      `not an address, a CIDR range or one of ${Object.keys(NAMED_RANGES).join('/')}: ${spec}`,
    );
  const max = v === 4 ? 32 : 128;
  const n = bits === undefined ? max : Number(bits);
  if (!/^\d+$/.test(bits ?? String(max)) || n > max) throw new Error(`invalid CIDR range: ${spec}`);
  return [addr, n, v === 4 ? 'ipv4' : 'ipv6'];
}

/** The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), if any. */
export function embeddedIpv4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const g = ipv6Groups(address);
  if (!g) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && g[5] === 0xffff) return v4(g[6]!, g[7]!); // ::ffff:a.b.c.d
  if (zero(0, 6) && (g[6] !== 0 || g[7]! > 1)) return v4(g[6]!, g[7]!); // ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return v4(g[6]!, g[7]!); // NAT64
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!); // 6to4
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (a zone `%eth0` ignored). */
function ipv6Groups(address: string): number[] | undefined {
  let s = address.split('%')[0]!.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const parse = (part: string) => (part ? part.split(':').map((x) => parseInt(x, 16)) : []);
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const fill = 8 - h.length - t.length;
  if (fill < 0 || (tail === undefined && fill !== 0)) return undefined;
  return [...h, ...new Array<number>(fill).fill(0), ...t];
}
