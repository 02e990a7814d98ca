import type { Agent, buildConnector, Dispatcher } from 'undici';
import { AddressGuard, type AddressGuardOptions } from '@meridian/egress';
import { undici } from './undici-lazy';

/** `upstream.*` address settings: which addresses imports and cache rules may connect to. */
export interface UpstreamGuardOptions {
  /** Private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7). Default true. */
  allowPrivateNetworks?: boolean;
  /** Loopback (127/8, ::1). Default true. */
  allowLoopback?: boolean;
  /** Addresses or CIDR ranges allowed although refused otherwise (e.g. `169.254.10.0/24`). Default none. */
  allowAddresses?: readonly string[];
  /** Tests: a fake resolver. */
  resolve?: AddressGuardOptions['resolve'];
  /** Tests: what connects once the address is allowed. Default undici's connector. */
  connect?: buildConnector.connector;
}

/** Always refused unless listed in `allowAddresses`: never a registry. */
const ALWAYS_REFUSED = ['metadata', 'unspecified', 'linklocal', 'multicast', 'reserved'];

/**
 * The SSRF guard of everything this package sends to another registry (ADR 0019): imports,
 * cache-rule fills and revalidations, the token realm a `WWW-Authenticate` names, and every
 * redirect hop (a blob sent on to object storage). It holds at connect time, on the address
 * actually dialled: an IP written in a URL is checked before connecting, a name when it resolves
 * (every address it resolves to), so DNS rebinding gains nothing. Cloud metadata, link-local,
 * unspecified, multicast and reserved addresses are refused by default; private networks and
 * loopback are ordinary upstreams of a self-hosted registry and allowed unless turned off.
 */
export class UpstreamGuard {
  readonly addresses: AddressGuard;
  private agent: Agent | undefined;
  private composed: Dispatcher | undefined;
  private closed = false;

  constructor(readonly options: UpstreamGuardOptions = {}) {
    const deny = [
      ...ALWAYS_REFUSED,
      ...(options.allowLoopback === false ? ['loopback'] : []),
      ...(options.allowPrivateNetworks === false ? ['private'] : []),
    ];
    this.addresses = new AddressGuard({
      deny,
      allow: options.allowAddresses ?? [],
      resolve: options.resolve,
    });
  }

  /** The undici dispatcher every upstream request goes through (undici is loaded on first use). */
  get dispatcher(): Agent {
    if (this.agent) return this.agent;
    // Made on first use: never again once closed (a request after `close()` fails, it does not
    // open a new agent nobody would close).
    if (this.closed) throw new Error('the upstream guard is closed');
    const { Agent, buildConnector } = undici();
    const connect = this.options.connect ?? buildConnector({ lookup: this.addresses.lookup });
    this.agent = new Agent({
      connect: (opts, callback) => {
        try {
          this.addresses.checkHost(opts.hostname);
        } catch (err) {
          callback(err as Error, null);
          return;
        }
        connect(opts, callback);
      },
    });
    return this.agent;
  }

  /**
   * The same, following redirects (up to 5 hops, each checked; `Authorization` is not sent on to
   * another origin): for undici's `request`, which does not follow them itself.
   */
  get redirecting(): Dispatcher {
    return (this.composed ??= this.dispatcher.compose(
      undici().interceptors.redirect({ maxRedirections: 5 }),
    ));
  }

  /** Throws `AddressRefusedError` when `url`'s host is an IP this guard refuses (before any job starts). */
  checkUrl(url: string | URL): void {
    this.addresses.checkLiteral(typeof url === 'string' ? new URL(url) : url);
  }

  /** Ends every upstream connection, in-flight requests included (the node is stopping). */
  close(): Promise<void> {
    this.closed = true;
    return this.agent?.destroy() ?? Promise.resolve();
  }
}

let fallback: UpstreamGuard | undefined;

/** The guard with the default settings, for a `RemoteRegistry` given none. */
export function defaultUpstreamGuard(): UpstreamGuard {
  return (fallback ??= new UpstreamGuard());
}
