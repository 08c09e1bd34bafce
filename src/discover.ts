import { asyncScheduler, defer, filter, forkJoin, race, ReplaySubject, switchMap, take, tap, timer, type Observable } from 'rxjs';
import { raceNats, type NatProbe } from './core/race-nats.js';
import { debugLogger, type Logger } from './core/logger.js';
import { GatewayUnreachableError } from './errors.js';
import type { Nat } from './core/nat.js';
import { pcp, type PcpOptions } from './protocols/pcp/client.js';
import { pmp, type PmpOptions } from './protocols/pmp/client.js';
import type { StunOptions } from './protocols/stun/client.js';
import { upnp, type UpnpOptions } from './protocols/upnp/client.js';

/** The discovery backends rxnat has. */
export type BackendName = 'pcp' | 'pmp' | 'upnp';

/**
 * The head start of the unicast UDP probes in {@link discoverNat}, in ms: NAT-PMP is sent when
 * PCP failed or after this long, UPnP's SSDP search when PCP and NAT-PMP both failed, or PCP's
 * port was refused (a router without them answers "port unreachable" at once, and both use
 * udp 5351), or after this long. A router answers PCP in
 * a few ms, and the race is decided before any M-SEARCH reaches it: a router is a small
 * single-threaded CPU, and the winner's mapping request would otherwise wait behind its answers
 * to the losers' searches (measured on miniupnpd: 4.7x the time of PCP alone).
 *
 * @example
 * ```ts
 * // A UPnP-only router that drops PCP and NAT-PMP silently is found UDP_HEAD_START_MS later.
 * discoverNat().subscribe((nat) => console.log(nat.kind));
 * ```
 */
export const UDP_HEAD_START_MS = 50;

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
}

/**
 * Finds the NAT gateway by racing PCP, NAT-PMP and UPnP discovery: PCP probes at once, NAT-PMP
 * once PCP failed or after {@link UDP_HEAD_START_MS}, UPnP once both failed or after that head
 * start; the first gateway that answers wins and the other probes are unsubscribed (their
 * sockets closed, those not started yet never start). Cold:
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
  const timeoutMs = options.timeoutMs ?? 3000;
  const backends = options.backends ?? ['pcp', 'pmp', 'upnp'];
  const withDeadline = <T extends { timeoutMs?: number }>(o: T | undefined): T => ({ timeoutMs, ...o }) as T;
  const upnpOptions = options.gateway !== undefined ? { gateway: options.gateway, ...options.upnp } : options.upnp;
  const scheduler = options.pcp?.transport?.scheduler ?? options.pmp?.transport?.scheduler ?? options.upnp?.transport?.scheduler ?? asyncScheduler;
  return defer(() => {
    // The unicast UDP probes go first (see UDP_HEAD_START_MS): NAT-PMP after PCP, UPnP after both.
    const start = scheduler.now();
    const failed = { pcp: new ReplaySubject<unknown>(1), pmp: new ReplaySubject<unknown>(1) };
    const udpFirst = (name: 'pcp' | 'pmp', nat$: Observable<Nat>): Observable<Nat> => {
      let found = false;
      return nat$.pipe(
        tap({ next: () => (found = true), error: (error: unknown) => failed[name].next(error), complete: () => (found ? undefined : failed[name].next(undefined)) }),
      );
    };
    // PCP and NAT-PMP share udp 5351: when PCP's was refused (port unreachable), NAT-PMP's will be too.
    const portClosed = failed.pcp.pipe(filter((error) => error instanceof GatewayUnreachableError && error.gatewayGone));
    const after = (earlier: readonly ('pcp' | 'pmp')[], probe: () => Observable<Nat>): Observable<Nat> => {
      const ahead = earlier.filter((name) => backends.includes(name));
      if (ahead.length === 0) return probe();
      const closed = ahead.length > 1 ? [portClosed] : [];
      return race(timer(UDP_HEAD_START_MS, scheduler), forkJoin(ahead.map((name) => failed[name].pipe(take(1)))), ...closed).pipe(take(1), switchMap(probe));
    };
    const probes: NatProbe[] = backends.map((name) => {
      switch (name) {
        case 'pcp':
          return { name, nat$: udpFirst(name, pcp(options.gateway, withDeadline(options.pcp))) };
        case 'pmp':
          return { name, nat$: udpFirst(name, after(['pcp'], () => pmp(options.gateway, withDeadline(options.pmp)))) };
        case 'upnp':
          // Its SSDP window is what is left of the race's deadline (unless given).
          return { name, nat$: after(['pcp', 'pmp'], () => upnp({ timeoutMs: Math.max(1, timeoutMs - (scheduler.now() - start)), ...upnpOptions })) };
      }
    });
    return raceNats([...probes, ...(options.probes ?? [])], timeoutMs, { logger: options.logger ?? debugLogger });
  });
}
