import { asyncScheduler, catchError, concat, defer, EMPTY, filter, forkJoin, merge, race, ReplaySubject, switchMap, take, tap, throwError, timer, type Observable, type SchedulerLike } from 'rxjs';
import { protocolOf, type GatewayRegistry } from './core/gateway-context.js';
import { unusableReason } from './core/unusable.js';
import { followNetwork, type FollowNetworkOptions } from './follow-network.js';
import { raceNats, type NatProbe } from './core/race-nats.js';
import { debugLogger, type Logger } from './core/logger.js';
import { GatewayUnreachableError, ProtocolError } from './errors.js';
import type { AddressFamily, Nat } from './core/nat.js';
import { pcp, type PcpOptions } from './protocols/pcp/client.js';
import { pmp, type PmpOptions } from './protocols/pmp/client.js';
import type { StunOptions } from './protocols/stun/client.js';
import { upnp, type UpnpOptions } from './protocols/upnp/client.js';
import { upnpPinhole, upnpPinholeVia, type UpnpPinholeOptions } from './protocols/upnp/firewall-client.js';

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
   * interface or the local address facing the router changes (with `family: 'ipv6'`, also the
   * IPv6 default router or the global IPv6 addresses of its interface: the watch reads IPv6
   * too), and emit each new gateway (the stream then never completes). Without `gateway`, each
   * discovery targets the router of the route it was asked for (with `family: 'ipv6'`, the IPv6
   * default route's). `true` for the defaults (a 2 s poll of the routing tables, no child
   * process on Linux), or its options. Default `false`: one race, then complete.
   */
  readonly followNetwork?: boolean | FollowNetworkOptions;
  /**
   * Which family of mapping the NAT found is for. `'ipv4'` (the default): port forwarding
   * through the NAT, the three backends above. `'ipv6'`: openings in the router's IPv6
   * firewall, two contestants: `pcp` is PCP over IPv6 (to `gateway` when it is an IPv6 address,
   * else the IPv6 default router), `upnp` is the IGD's WANIPv6FirewallControl:1 service
   * ({@link DiscoverNatOptions.pinhole}); `pmp` has no IPv6 and is skipped. Either way, a NAT
   * of the other family (from `probes`) does not win: it counts as that probe's failure, a
   * {@link ProtocolError} of reason `family`.
   */
  readonly family?: AddressFamily;
  /**
   * The UPnP firewall contestant of `family: 'ipv6'`. With `descriptionUrl`: that description
   * ({@link upnpPinhole}). Without: the first of the IGD found over IPv4 by `upnp()` (with
   * {@link DiscoverNatOptions.upnp}), then {@link upnpPinholeVia} with these options (give
   * `controlHost`, the router's IPv6 address, for miniupnpd, which takes pinholes over IPv6
   * only), and an IPv6 M-SEARCH to `ssdpTargets` (default `[ff02::c]:1900`; `[]` skips it).
   */
  readonly pinhole?: UpnpPinholeOptions;
}

/**
 * Finds the NAT gateway by racing PCP, NAT-PMP and UPnP discovery: PCP probes at once, NAT-PMP
 * once PCP failed or after {@link UDP_HEAD_START_MS}, UPnP once both failed or after that head
 * start; the first gateway that answers wins and the other probes are unsubscribed (their
 * sockets closed, those not started yet never start). A probe answered with a refusal finds
 * nothing; a gateway that refused to map with a backend lately (a "not here" code) is skipped
 * while another can be found (and counts as failed for the head start). Cold:
 * each subscription discovers anew. Fails with a `NoGatewayError` that lists why each backend
 * failed when none answers within `timeoutMs`.
 *
 * With `family: 'ipv6'` it finds where IPv6 firewall openings are made instead: PCP over IPv6
 * races the UPnP firewall service (see {@link DiscoverNatOptions.family}); the NAT found has
 * `family: 'ipv6'`, for requests such as `{ protocol: 'tcp', internalPort: 8080, family: 'ipv6' }`.
 *
 * @example
 * ```ts
 * import { discoverNat, mapPort } from 'rxnat';
 * mapPort(discoverNat(), { protocol: 'udp', internalPort: 4001 }).subscribe(console.log);
 * mapPort(discoverNat({ family: 'ipv6' }), { protocol: 'udp', internalPort: 4001, family: 'ipv6' }).subscribe(console.log);
 * ```
 */
export function discoverNat(options: DiscoverNatOptions = {}): Observable<Nat> {
  const { followNetwork: follow, ...once } = options;
  if (follow) {
    const ipv6 = once.family === 'ipv6';
    const given = typeof follow === 'object' ? follow : {};
    return followNetwork(
      (snapshot) => {
        // Each family's discovery is aimed at its own default router (the watch reads IPv6's when asked).
        const router = once.gateway ?? (ipv6 ? snapshot.defaultIpv6Gateway?.gateway : snapshot.defaultGateway?.gateway);
        return discoverNat(router === undefined ? once : { ...once, gateway: router });
      },
      {
        ...(once.logger ? { logger: once.logger } : {}),
        ...(once.scheduler ? { scheduler: once.scheduler } : {}),
        ...given,
        // IPv6 discovery watches the IPv6 route and addresses as well (ignored with a `watch` of the caller's).
        ...(ipv6 ? { watchOptions: { ipv6: true, ...given.watchOptions } } : {}),
      },
    );
  }
  const timeoutMs = options.timeoutMs ?? 3000;
  const backends = options.backends ?? ['pcp', 'pmp', 'upnp'];
  const withDeadline = <T extends { timeoutMs?: number }>(o: T | undefined): T => ({ timeoutMs, ...o }) as T;
  const upnpOptions = options.gateway !== undefined ? { gateway: options.gateway, ...options.upnp } : options.upnp;
  const scheduler = options.scheduler ?? options.pcp?.transport?.scheduler ?? options.pmp?.transport?.scheduler ?? options.upnp?.transport?.scheduler ?? asyncScheduler;
  const scope = { registry: options.gatewayRegistry, scheduler };
  const unusable = (nat: Nat): Error | null => unusableReason(nat, scope);
  return defer(() => {
    // The unicast UDP probes go first (see UDP_HEAD_START_MS): NAT-PMP after PCP, UPnP after both.
    const start = scheduler.now();
    const failed = { pcp: new ReplaySubject<unknown>(1), pmp: new ReplaySubject<unknown>(1) };
    const udpFirst = (name: 'pcp' | 'pmp', nat$: Observable<Nat>): Observable<Nat> => {
      let found = false;
      return nat$.pipe(
        // A NAT that refused to map lately does not hold the next probe back.
        tap({ next: (nat) => (unusable(nat) === null ? (found = true) : failed[name].next(unusable(nat))), error: (error: unknown) => failed[name].next(error), complete: () => (found ? undefined : failed[name].next(undefined)) }),
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
    const probes: NatProbe[] =
      options.family === 'ipv6'
        ? ipv6Probes(backends, options, withDeadline, (nat$) => udpFirst('pcp', nat$), (probe) => after(['pcp'], probe))
        : backends.map((name) => {
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
    const extra = (options.probes ?? []).map((probe) => (options.family === undefined ? probe : { ...probe, nat$: ofFamily(probe.nat$, options.family) }));
    return raceNats([...probes, ...extra], timeoutMs, { logger: options.logger ?? debugLogger, scheduler, unusable });
  });
}

/**
 * The contestants of `family: 'ipv6'`: PCP over IPv6, and the UPnP firewall service (through
 * the IGD found over IPv4, and over IPv6 SSDP) once PCP failed or had its head start; NAT-PMP
 * has no IPv6.
 */
function ipv6Probes(
  backends: readonly BackendName[],
  options: DiscoverNatOptions,
  withDeadline: <T extends { timeoutMs?: number }>(o: T | undefined) => T,
  udpFirst: (nat$: Observable<Nat>) => Observable<Nat>,
  afterPcp: (probe: () => Observable<Nat>) => Observable<Nat>,
): NatProbe[] {
  const probes: NatProbe[] = [];
  if (backends.includes('pcp')) probes.push({ name: 'pcp', nat$: udpFirst(ofFamily(pcp(options.gateway, { ...withDeadline(options.pcp), family: 'ipv6' }), 'ipv6')) });
  if (backends.includes('upnp')) {
    const { descriptionUrl, ssdpTargets, timeoutMs: _window, ssdpRepeatIntervalMs: _repeat, mxSeconds: _mx, ...common } = options.pinhole ?? {};
    const search = withDeadline(options.pinhole);
    const viaIgd = upnp(withDeadline(options.upnp)).pipe(switchMap((igd) => upnpPinholeVia(igd, common)));
    const nat$ =
      descriptionUrl !== undefined
        ? upnpPinhole(search)
        : firstFound(ssdpTargets !== undefined && ssdpTargets.length === 0 ? [viaIgd] : [viaIgd, upnpPinhole(search)]);
    // As over IPv4, the UPnP searches wait for PCP's head start.
    probes.push({ name: 'upnp', nat$: afterPcp(() => nat$) });
  }
  return probes;
}

/** The first NAT any source finds; when none does, the error of the first source (in order). */
function firstFound(sources: readonly Observable<Nat>[]): Observable<Nat> {
  return defer(() => {
    const errors: unknown[] = [];
    const tried = sources.map((source, i) =>
      source.pipe(
        take(1),
        catchError((error: unknown) => {
          errors[i] = error;
          return EMPTY;
        }),
      ),
    );
    return concat(merge(...tried), defer(() => throwError(() => errors.find((e) => e !== undefined)))).pipe(take(1));
  });
}

/** `nat$`, where a NAT of another family is an error (reason `family`) instead of a win. */
function ofFamily(nat$: Observable<Nat>, family: AddressFamily): Observable<Nat> {
  return nat$.pipe(
    filter((nat) => {
      if ((nat.family ?? 'ipv4') === family) return true;
      throw new ProtocolError(protocolOf(nat), 'family', `${nat.name} maps ${nat.family ?? 'ipv4'}, not ${family}`, nat.name);
    }),
  );
}
