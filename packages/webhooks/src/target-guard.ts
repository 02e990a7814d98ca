import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Ranges a webhook may not reach unless an operator allows them (SSRF): loopback, private,
 * shared, link-local (cloud metadata at 169.254.169.254 included), multicast, reserved.
 */
const DENIED: [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['64:ff9b::', 96, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

/** Names `allowPrivateTargets` accepts besides addresses and CIDR ranges. */
const NAMED: Record<string, [string, number, 'ipv4' | 'ipv6'][]> = {
  loopback: [
    ['127.0.0.0', 8, 'ipv4'],
    ['::1', 128, 'ipv6'],
  ],
  private: [
    ['10.0.0.0', 8, 'ipv4'],
    ['172.16.0.0', 12, 'ipv4'],
    ['192.168.0.0', 16, 'ipv4'],
    ['100.64.0.0', 10, 'ipv4'],
    ['fc00::', 7, 'ipv6'],
  ],
  linklocal: [
    ['169.254.0.0', 16, 'ipv4'],
    ['fe80::', 10, 'ipv6'],
  ],
};

export class TargetRefusedError extends Error {
  readonly code = 'ETARGETREFUSED';
}

/**
 * Decides which addresses a webhook may connect to. `allow` lists what operators permit inside
 * the denied ranges: `loopback`, `private`, `linklocal`, addresses or CIDR ranges.
 */
export class TargetGuard {
  private readonly denied = new BlockList();
  private readonly allowed = new BlockList();

  constructor(allow: readonly string[] = []) {
    for (const [a, bits, family] of DENIED) this.denied.addSubnet(a, bits, family);
    for (const spec of allow) {
      for (const [a, bits, family] of NAMED[spec] ?? [parseCidr(spec)])
        this.allowed.addSubnet(a, bits, family);
    }
  }

  /** True when `address` (an IP) may be connected to. */
  permits(address: string): boolean {
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    return !this.denied.check(address, family) || this.allowed.check(address, family);
  }

  /** Throws `TargetRefusedError` when the URL's host is an IP literal that is not permitted. */
  checkLiteral(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && !this.permits(host))
      throw new TargetRefusedError(`${host} is in a private, loopback or reserved range`);
  }

  /** A `lookup` for http(s).request that refuses names resolving into a denied range. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      const refused = addresses.find((a) => !this.permits(a.address));
      if (refused || addresses.length === 0) {
        callback(
          new TargetRefusedError(
            `${hostname} resolves to ${refused?.address ?? 'nothing'}, in a private, loopback or reserved range`,
          ),
          '',
          0,
        );
        return;
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

function parseCidr(spec: string): [string, number, 'ipv4' | 'ipv6'] {
  const [addr = '', bits] = spec.split('/');
  const v = isIP(addr);
  if (v === 0)
    throw new Error(`not an address, a CIDR range or loopback/private/linklocal: ${spec}`);
  const max = v === 4 ? 32 : 128;
  const n = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`invalid CIDR range: ${spec}`);
  return [addr, n, v === 4 ? 'ipv4' : 'ipv6'];
}
