import { asyncScheduler, type Observable, type SchedulerLike } from 'rxjs';
import type { GatewayRegistry } from './core/gateway-context.js';
import { unusableReason } from './core/unusable.js';
import { followNetwork, type FollowNetworkOptions } from './follow-network.js';
import { raceNats, type NatProbe } from './core/race-nats.js';
import { debugLogger, type Logger } from './core/logger.js';
import type { Nat } from './core/nat.js';
import { pcp, type PcpOptions } from './protocols/pcp/client.js';
import { pmp, type PmpOptions } from './protocols/pmp/client.js';
import type { StunOptions } from './protocols/stun/client.js';
import { upnp, type UpnpOptions } from './protocols/upnp/client.js';

/** The discovery backends rxnat has. */
export type BackendName = 'pcp' | 'pmp' | 'upnp';

/**
 * Options of {@link discoverNat}.
 *
 * @example
 * ```ts
 * discoverNat({ backends: ['pmp', 'upnp'], timeoutMs: 2000 });
 * ```
 */
export interface DiscoverNatOptions {
  /** Which backends race. Default all three: PCP, NAT-PMP and UPnP. */
  readonly backends?: readonly BackendName[];
  /** The gateway's address for PCP and NAT-PMP, and the router UPnP prefers (default: the default route's router). */
  readonly gateway?: string;
  /** How long the race may take before it fails with `NoGatewayError`. Default 3000 ms. */
  readonly timeoutMs?: number;
  /** Options for each backend (ports, local address, SSDP targets, timeouts). */
  readonly pcp?: PcpOptions;
  readonly pmp?: PmpOptions;
  readonly upnp?: UpnpOptions;
  /** Options of the `stun` NAT spec (servers, timeouts); not raced by discovery. */
  readonly stun?: StunOptions;
  /** Extra contestants, raced with the built-in ones (or alone with `backends: []`). */
  readonly probes?: readonly NatProbe[];
  readonly logger?: Logger;
  /**
   * Whose memory of refusals to consult: a NAT whose mapping was refused lately with a "not
   * here" code (by streams on this registry) wins only when nothing else is found. Default the
   * process-wide registry, as for `mapPort`.
   */
  readonly gatewayRegistry?: GatewayRegistry;
  /** The scheduler of the race's deadline and of that memory's clock (pass `mapPort`'s). Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /**
   * Follow the network ({@link followNetwork}): discover again whenever the default route, its
   * interface or the local address facing the router changes, and emit each new gateway (the
   * stream then never completes). Without `gateway`, each discovery targets the router of the
   * route it was asked for. `true` for the defaults (a 2 s poll of the routing table, no child
   * process on Linux), or its options. Default `false`: one race, then complete.
   */
  readonly followNetwork?: boolean | FollowNetworkOptions;
}

/**
 * Finds the NAT gateway by racing PCP, NAT-PMP and UPnP discovery: all probe at once, the first
 * gateway that answers wins and the other probes are unsubscribed (their sockets closed). A
 * probe answered with a refusal finds nothing; a gateway that refused to map with a backend
 * lately (a "not here" code) is skipped while another can be found. Cold:
 * each subscription discovers anew. Fails with a `NoGatewayError` that lists why each backend
 * failed when none answers within `timeoutMs`.
 *
 * @example
 * ```ts
 * import { discoverNat, mapPort } from 'rxnat';
 * mapPort(discoverNat(), { protocol: 'udp', internalPort: 4001 }).subscribe(console.log);
 * ```
 */
export function discoverNat(options: DiscoverNatOptions = {}): Observable<Nat> {
  const { followNetwork: follow, ...once } = options;
  if (follow) {
    return followNetwork(
      (snapshot) => {
        const router = once.gateway ?? snapshot.defaultGateway?.gateway;
        return discoverNat(router === undefined ? once : { ...once, gateway: router });
      },
      { ...(once.logger ? { logger: once.logger } : {}), ...(once.scheduler ? { scheduler: once.scheduler } : {}), ...(typeof follow === 'object' ? follow : {}) },
    );
  }
  const timeoutMs = options.timeoutMs ?? 3000;
  const backends = options.backends ?? ['pcp', 'pmp', 'upnp'];
  const withDeadline = <T extends { timeoutMs?: number }>(o: T | undefined): T => ({ timeoutMs, ...o }) as T;
  const probes: NatProbe[] = backends.map((name) => {
    switch (name) {
      case 'pcp':
        return { name, nat$: pcp(options.gateway, withDeadline(options.pcp)) };
      case 'pmp':
        return { name, nat$: pmp(options.gateway, withDeadline(options.pmp)) };
      case 'upnp':
        return { name, nat$: upnp(withDeadline(options.gateway !== undefined ? { gateway: options.gateway, ...options.upnp } : options.upnp)) };
    }
  });
  const scheduler = options.scheduler ?? asyncScheduler;
  const scope = { registry: options.gatewayRegistry, scheduler };
  return raceNats([...probes, ...(options.probes ?? [])], timeoutMs, {
    logger: options.logger ?? debugLogger,
    scheduler,
    unusable: (nat) => unusableReason(nat, scope),
  });
}
