import { AddressGuard, AddressRefusedError } from '@meridian/egress';

/**
 * Ranges a webhook may not reach unless an operator allows them (SSRF): loopback, private,
 * shared, link-local (cloud metadata at 169.254.169.254 included), multicast, reserved, and
 * NAT64 as a whole.
 */
const DENIED = [
  'unspecified',
  'loopback',
  'private',
  'linklocal',
  'metadata',
  'multicast',
  'reserved',
  '64:ff9b::/96',
];

/** A webhook target the guard refused (`code` `ETARGETREFUSED`). */
export { AddressRefusedError as TargetRefusedError };

/**
 * Decides which addresses a webhook may connect to. `allow` lists what operators permit inside
 * the denied ranges: `loopback`, `private`, `linklocal`, addresses or CIDR ranges. The address
 * logic is `@meridian/egress`'s, shared with the upstream registries of imports and cache rules.
 */
export class TargetGuard extends AddressGuard {
  constructor(allow: readonly string[] = []) {
    super({ deny: DENIED, allow, label: 'in a private, loopback or reserved range' });
  }
}
