/**
 * The UPnP IGD v1/v2 backend: SSDP discovery, device description, SOAP actions, as a
 * {@link Nat}.
 *
 * @packageDocumentation
 */
import {
  catchError,
  concatMap,
  defer,
  EMPTY,
  expand,
  filter,
  first,
  from,
  ignoreElements,
  map,
  mergeMap,
  Observable,
  of,
  Subject,
  Subscription,
  switchMap,
  takeWhile,
  tap,
  throwError,
  toArray,
} from 'rxjs';
import { externalAddressProblem } from '../../core/address.js';
import { priorityQueue } from '../../core/gateway-context.js';
import { debugLogger, type Logger } from '../../core/logger.js';
import type { MappingGrant, MappingProtocol, Nat, NatMappingRequest, PortMappingEntry } from '../../core/nat.js';
import { GatewayError, GatewayTimeoutError, ProtocolError } from '../../errors.js';
import type { HttpRequest, HttpResponse } from '../../transport/http.js';
import { nodeTransport, type Transport } from '../../transport/transport.js';
import { SSDP_MULTICAST_TARGET, ssdpSearch, type SsdpAnswer, type SsdpSearchOptions, type SsdpTarget } from './ssdp-search.js';
import { parseDescription, wanConnectionServices, type DeviceDescription, type WanConnectionService } from './description.js';
import {
  decodeSoapResponse,
  encodeAddAnyPortMapping,
  encodeAddPortMapping,
  encodeDeletePortMapping,
  encodeGetExternalIPAddress,
  encodeGetGenericPortMappingEntry,
  encodeGetSpecificPortMappingEntry,
  encodeGetStatusInfo,
  faultToError,
  readExternalIp,
  readPortMappingEntry,
  readReservedPort,
  readStatusInfo,
  type PortMappingArguments,
  type SoapRequest,
  type StatusInfo,
} from './soap.js';
import { IGD_LEAD_SEARCH_TARGETS, IGD_SEARCH_TARGETS, SSDP_PORT, usnDevice } from './ssdp.js';

/**
 * Options of {@link upnp}.
 *
 * @example
 * ```ts
 * upnp({ ssdpTargets: [{ address: '127.0.0.1', port: 41900 }], timeoutMs: 1000, requestTimeoutMs: 500 });
 * ```
 */
export interface UpnpOptions {
  /** Skip SSDP and use this device description URL (`http:` only). */
  readonly descriptionUrl?: string;
  /**
   * Where M-SEARCH is sent. Default: the multicast group `239.255.255.250:1900` plus the
   * default gateway at port 1900 (unicast). Tests pass loopback targets.
   */
  readonly ssdpTargets?: readonly SsdpTarget[];
  /**
   * The router to search by unicast and to prefer among the IGDs that answer, instead of the
   * default route's (ignored when `ssdpTargets` is given).
   */
  readonly gateway?: string;
  /** Local address to bind the SSDP socket and HTTP connections to. */
  readonly localAddress?: string;
  /** SSDP discovery window in ms (resolves earlier, on the first valid gateway). Default 2000. */
  readonly timeoutMs?: number;
  /** Deadline of each HTTP request in ms. Default 3000 (go-ethereum's SOAP timeout). */
  readonly requestTimeoutMs?: number;
  /** Most HTTP requests in flight to the gateway at once. Default 1. */
  readonly maxConcurrentRequests?: number;
  /** Largest HTTP response body accepted, in bytes. Default 262 144. */
  readonly maxBodyBytes?: number;
  /**
   * Delay between M-SEARCH rounds inside the window, in ms. Default `timeoutMs / 4`. The rounds
   * start at the latest after this long even while the lead search's answer is being checked.
   */
  readonly ssdpRepeatIntervalMs?: number;
  /** MX of the M-SEARCH, in seconds. Default 1. */
  readonly mxSeconds?: number;
  /** IGDv1: how many random external ports to try after a 718 conflict. Default 3 (as go-ethereum). */
  readonly conflictRetries?: number;
  /** Most entries `listMappings()` reads. Default 1024. */
  readonly maxListedMappings?: number;
  /** Random source in [0, 1) for the IGDv1 conflict ports. Default `Math.random`. */
  readonly random?: () => number;
  /** Where discovery, every SOAP action and its answer are logged (`rxnat:upnp`). Default {@link debugLogger} (`DEBUG=rxnat:*`). */
  readonly logger?: Logger;
  /**
   * The I/O: SSDP's UDP collection, HTTP, the default-route lookup (the unicast SSDP target), and
   * the scheduler of the SSDP window and request deadlines. Default the real one. Tests pass a
   * fake one, as in `upnp({ transport })`.
   */
  readonly transport?: Transport;
}

/**
 * A UPnP gateway: a {@link Nat} with the IGD-specific extras.
 *
 * @example
 * ```ts
 * upnp({ descriptionUrl: 'http://192.168.1.1:5000/rootDesc.xml' }).subscribe((nat) => {
 *   console.log(nat.name, nat.service.serviceType, nat.internalClient);
 * });
 * ```
 */
export interface UpnpNat extends Nat {
  readonly kind: 'upnp';
  /** The description URL actually fetched (after any LOCATION rewrite). */
  readonly gateway: string;
  readonly maxConcurrentRequests: number;
  /** The description, fetched once when the gateway was found. */
  readonly description: DeviceDescription;
  /** The WAN connection service used. */
  readonly service: WanConnectionService;
  /** This host's address as the gateway sees it (`NewInternalClient`). */
  readonly internalClient: string;
  /** True once the gateway was found to accept only permanent leases (725). */
  readonly permanentLeasesOnly: boolean;
  /** GetStatusInfo. */
  statusInfo(): Observable<StatusInfo>;
  /** GetSpecificPortMappingEntry; `null` when there is no such mapping (714). */
  specificMapping(protocol: MappingProtocol, externalPort: number): Observable<PortMappingEntry | null>;
  /** Whether the router still forwards the grant's external port to this host and internal port (GetSpecificPortMappingEntry). */
  checkMapping(grant: MappingGrant): Observable<boolean>;
  listMappings(): Observable<readonly PortMappingEntry[]>;
}

interface Config {
  readonly descriptionUrl: string | undefined;
  readonly ssdpTargets: readonly SsdpTarget[] | undefined;
  readonly localAddress: string | undefined;
  readonly timeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxConcurrentRequests: number;
  readonly maxBodyBytes: number;
  readonly ssdpRepeatIntervalMs: number | undefined;
  readonly mxSeconds: number;
  readonly conflictRetries: number;
  readonly maxListedMappings: number;
  readonly random: () => number;
  readonly logger: Logger;
  readonly transport: Transport;
}

const IGD_ST = /(InternetGatewayDevice|WANIPConnection|WANPPPConnection):\d+$/i;
const CONFLICT_PORT_LOW = 10000;
const CONFLICT_PORT_HIGH = 65534;

/**
 * Finds a UPnP Internet Gateway Device and emits it as a {@link UpnpNat}, then completes. Cold:
 * each subscription searches anew; unsubscribing closes the SSDP socket and aborts HTTP requests.
 *
 * Without `descriptionUrl`, one M-SEARCH for IGD:1 (which IGDv2 devices answer too) goes at once
 * to each unicast target (the default gateway, or the unicast `ssdpTargets`) alone; when no IGD
 * answered it within {@link SSDP_WIDEN_AFTER_MS}, or what answered failed its check, rounds of
 * M-SEARCH for IGD:2, IGD:1, WANIPConnection:2/1 and WANPPPConnection:1 go to every target (the
 * multicast group too), repeated inside `timeoutMs`. Without a unicast target, the rounds start
 * at once. Every distinct gateway that answers is
 * checked (description fetched over `http:` from the address that answered, never from a host a
 * LOCATION names instead; a WAN connection service whose control URL stays on that host and
 * port; of several, the first whose GetStatusInfo says `Connected`, a single one as it is), and
 * the first valid one is emitted at once (an IGDv1 waits only for IGDv2
 * candidates already being checked). Errors with the last candidate's error, or a
 * {@link GatewayTimeoutError} when nothing answered.
 *
 * `externalIp()` fails with a {@link ProtocolError} of reason `external-address` (carrying the
 * control URL) when GetExternalIPAddress answers empty, `0.0.0.0` (not connected), loopback,
 * link-local, multicast, reserved or no IPv4 address at all; an AddAnyPortMapping answer without a valid
 * `NewReservedPort` is reason `external-port`.
 *
 * @example
 * ```ts
 * upnp().pipe(switchMap((nat) => nat.addMapping({ protocol: 'tcp', internalPort: 8080, externalPort: 8080,
 *   description: 'my app', lifetimeSeconds: 3600 }))).subscribe((grant) => console.log(grant.externalPort));
 * ```
 */
export function upnp(options: UpnpOptions = {}): Observable<UpnpNat> {
  return defer(() => {
    const config: Config = {
      descriptionUrl: options.descriptionUrl,
      ssdpTargets: options.ssdpTargets,
      localAddress: options.localAddress,
      timeoutMs: options.timeoutMs ?? 2000,
      requestTimeoutMs: options.requestTimeoutMs ?? 3000,
      maxConcurrentRequests: Math.max(1, Math.floor(options.maxConcurrentRequests ?? 1)),
      maxBodyBytes: options.maxBodyBytes ?? 256 * 1024,
      ssdpRepeatIntervalMs: options.ssdpRepeatIntervalMs,
      mxSeconds: options.mxSeconds ?? 1,
      conflictRetries: Math.max(0, Math.floor(options.conflictRetries ?? 3)),
      maxListedMappings: Math.max(0, Math.floor(options.maxListedMappings ?? 1024)),
      random: options.random ?? Math.random,
      logger: options.logger ?? debugLogger,
      transport: options.transport ?? nodeTransport,
    };
    if (config.descriptionUrl !== undefined) return probe(config, config.descriptionUrl, []);
    const targets$ =
      config.ssdpTargets !== undefined
        ? of(config.ssdpTargets)
        : options.gateway !== undefined
          ? of([SSDP_MULTICAST_TARGET, { address: options.gateway, port: SSDP_PORT }])
          : config.transport.defaultGateway().pipe(
              map(({ gateway }) => [SSDP_MULTICAST_TARGET, { address: gateway, port: SSDP_PORT }]),
              catchError(() => of([SSDP_MULTICAST_TARGET])),
            );
    // Searching on its own (no ssdpTargets given), the gateway on the default route is preferred.
    return targets$.pipe(switchMap((targets) => discover(config, targets, config.ssdpTargets === undefined ? targets[1]?.address : undefined)));
  });
}

/**
 * Most descriptions fetched (and checked) at once during one discovery: every LOCATION costs a
 * TCP connection, and a network (or an attacker) answering M-SEARCH thousands of times must not
 * open thousands of them.
 */
export const MAX_CONCURRENT_PROBES = 4;
/** Most distinct LOCATIONs one discovery fetches; later answers are ignored (and logged). */
export const MAX_PROBED_LOCATIONS = 32;
/** Most WAN connection services of one description asked GetStatusInfo; a real IGD has one or two. */
export const MAX_CHECKED_SERVICES = 16;
/**
 * How long another IGD is held back, from the start of the search, for the default gateway's
 * answer (miniupnpd answers M-SEARCH in ~50 ms); it is taken at once after that, or as soon as
 * the default gateway's own check failed.
 */
export const PREFERRED_GRACE_MS = 300;
/**
 * How long the lead search (one M-SEARCH for IGD:1, unicast to each unicast target: the router on
 * the default route) goes alone when no IGD answered it: then the full rounds start (every search
 * target, to the multicast group too). They also start as soon as every gateway the lead found
 * failed its check, and at `ssdpRepeatIntervalMs` at the latest. Below {@link PREFERRED_GRACE_MS},
 * so an IGD elsewhere is still found within the grace the default gateway gets anyway.
 */
export const SSDP_WIDEN_AFTER_MS = 150;

/**
 * Searches with SSDP and checks each distinct answering gateway; see {@link upnp}. An answer from
 * `preferredAddress` (the gateway on the default route) is preferred: it is checked first, and
 * another gateway is taken only once its check failed or if it had not answered yet.
 */
function discover(config: Config, targets: readonly SsdpTarget[], preferredAddress?: string): Observable<UpnpNat> {
  return new Observable<UpnpNat>((subscriber) => {
    const probes = new Subscription();
    const seenLocations = new Set<string>();
    const seenDevices = new Set<string>();
    /** Answers waiting for a probe slot, the default gateway's first. */
    const waiting: Array<{ readonly href: string; readonly rewriteOrigins: readonly string[]; readonly preferred: boolean }> = [];
    let running = 0;
    let preferredOpen = 0;
    let ignored = 0;
    let searching = true;
    let held: { readonly nat: UpnpNat; readonly rank: number } | undefined;
    let lastError: Error | undefined;
    let settled = false;
    // The lead search goes to the unicast targets alone; the full rounds start when it found
    // nothing usable (see SSDP_WIDEN_AFTER_MS).
    const leadTargets = targets.filter((t) => externalAddressProblem(t.address) !== 'multicast');
    const leadAddresses = new Set(leadTargets.map((t) => t.address));
    const widen$ = new Subject<void>();
    let widened = leadTargets.length === 0;
    let leadAnswered = false;
    const widen = (): void => {
      if (widened || settled) return;
      widened = true;
      widen$.next();
    };
    const widenTimer = widened ? undefined : config.transport.scheduler.schedule(() => (leadAnswered ? undefined : widen()), SSDP_WIDEN_AFTER_MS);
    // Without a default gateway to prefer, nothing is held back for it.
    let graceOver = preferredAddress === undefined;
    const grace = graceOver
      ? undefined
      : config.transport.scheduler.schedule(() => {
          graceOver = true;
          if (held && held.rank === 2 && preferredOpen === 0) settle(held.nat);
          else check();
        }, PREFERRED_GRACE_MS);

    const settle = (nat: UpnpNat): void => {
      if (settled) return;
      settled = true;
      subscriber.next(nat);
      subscriber.complete();
    };
    const check = (): void => {
      if (settled || running > 0 || waiting.length > 0) return;
      // Nothing in hand from the lead's answers: search wider at once.
      if (!held && searching && !widened && leadAnswered) widen();
      if (held && (graceOver || held.rank === 3)) settle(held.nat);
      else if (!searching) {
        settled = true;
        subscriber.error(lastError ?? new GatewayTimeoutError('upnp', `ssdp(${targets.map((t) => `${t.address}:${t.port}`).join(', ')})`, config.timeoutMs));
      }
    };
    /** 3: the default gateway's; 2: an IGDv2 (or a v2 service); 1: any other. */
    const rank = (nat: UpnpNat, fromPreferred: boolean): number =>
      fromPreferred ? 3 : nat.description.igdVersion === 2 || nat.service.version === 2 ? 2 : 1;
    const startProbes = (): void => {
      while (!settled && running < MAX_CONCURRENT_PROBES && waiting.length > 0) {
        const next = waiting.shift()!;
        running += 1;
        probes.add(
          probe(config, next.href, next.rewriteOrigins).subscribe({
            next: (nat) => {
              running -= 1;
              if (next.preferred) preferredOpen -= 1;
              const r = rank(nat, next.preferred);
              // The default gateway's IGD at once; an IGDv2 elsewhere at once unless the default
              // gateway's answer is still being checked; anything else waits for the others.
              if (r === 3 || (r === 2 && preferredOpen === 0 && graceOver)) return settle(nat);
              if (!held || r > held.rank) held = { nat, rank: r };
              startProbes();
              check();
            },
            error: (error: Error) => {
              running -= 1;
              if (next.preferred) {
                preferredOpen -= 1;
                // The default gateway's IGD is not usable: nothing more to wait for.
                graceOver = true;
              }
              lastError = error;
              if (held && held.rank === 2 && preferredOpen === 0 && graceOver) return settle(held.nat);
              startProbes();
              check();
            },
          }),
        );
      }
    };
    const onAnswer = ({ message, from }: SsdpAnswer): void => {
      config.logger.debug('rxnat:upnp', `SSDP answer from ${from.address}:${from.port}: ST ${message.st}, LOCATION ${message.location}`);
      if (settled || !IGD_ST.test(message.st.trim())) return;
      let location: URL;
      try {
        location = new URL(message.location);
      } catch {
        lastError = new ProtocolError('ssdp', 'bad-location', `LOCATION ${JSON.stringify(message.location)} is not a URL`, from.address);
        return;
      }
      if (location.protocol !== 'http:') {
        lastError = new ProtocolError('ssdp', 'bad-location', `LOCATION ${location.href} is not an http: URL`, from.address);
        return;
      }
      // Fetch only from the address that answered: a LOCATION naming another host (CARP/VRRP
      // routers, or a spoofed answer) is rewritten to the responder, never fetched as given.
      const rewriteOrigins: string[] = [];
      if (location.hostname !== from.address) {
        rewriteOrigins.push(location.origin);
        location.hostname = from.address;
      }
      const device = message.usn ? usnDevice(message.usn) : '';
      if (seenLocations.has(location.href) || (device !== '' && seenDevices.has(device))) return;
      if (seenLocations.size >= MAX_PROBED_LOCATIONS) {
        if (ignored++ === 0) config.logger.debug('rxnat:upnp', `more than ${MAX_PROBED_LOCATIONS} distinct LOCATIONs answered: ignoring the rest`);
        return;
      }
      seenLocations.add(location.href);
      if (device !== '') seenDevices.add(device);
      const isPreferred = from.address === preferredAddress;
      if (!widened && leadAddresses.has(from.address)) leadAnswered = true;
      const entry = { href: location.href, rewriteOrigins, preferred: isPreferred };
      if (isPreferred) {
        preferredOpen += 1;
        waiting.unshift(entry);
      } else waiting.push(entry);
      startProbes();
    };
    const searchOptions: SsdpSearchOptions = {
      targets,
      searchTargets: IGD_SEARCH_TARGETS,
      ...(widened ? {} : { lead: { targets: leadTargets, searchTargets: IGD_LEAD_SEARCH_TARGETS }, widen: widen$ }),
      windowMs: config.timeoutMs,
      mxSeconds: config.mxSeconds,
      ...(config.ssdpRepeatIntervalMs !== undefined ? { repeatIntervalMs: config.ssdpRepeatIntervalMs } : {}),
      ...(config.localAddress !== undefined ? { localAddress: config.localAddress } : {}),
    };
    const search = ssdpSearch(searchOptions, config.transport).subscribe({
      next: onAnswer,
      error: (error: Error) => {
        searching = false;
        lastError ??= error;
        check();
      },
      complete: () => {
        searching = false;
        check();
      },
    });
    return () => {
      settled = true;
      grace?.unsubscribe();
      widenTimer?.unsubscribe();
      search.unsubscribe();
      probes.unsubscribe();
    };
  });
}

/** Fetches and checks one gateway's description; emits its {@link UpnpNat}. */
function probe(config: Config, descriptionUrl: string, rewriteOrigins: readonly string[]): Observable<UpnpNat> {
  const limit = requestLimit(config.maxConcurrentRequests);
  return limit(httpRequest(config, { method: 'GET', url: descriptionUrl }))
    .pipe(
      mergeMap((response) => {
        const description = readDescription(response, descriptionUrl, rewriteOrigins, config.maxBodyBytes);
        if (description instanceof Error) return throwError(() => description);
        const services = wanConnectionServices(description);
        if (services instanceof ProtocolError) return throwError(() => services);
        const internalClient = config.localAddress ?? response.localAddress;
        const make = (service: WanConnectionService): UpnpGateway => new UpnpGateway(config, limit, description, service, internalClient);
        // One service leaves nothing to choose: it is taken without a request. Whether its WAN
        // link is up shows in the first GetExternalIPAddress, which the core asks before the
        // first add anyway (0.0.0.0 or empty: reason `external-address`, not mapped).
        const [only] = services;
        return services.length === 1 && only !== undefined ? of(make(only)) : chooseConnected(services.map(make));
      }),
    );
}

/** One HTTP request through the transport, with the configured deadline, body bound, local address and scheduler. */
function httpRequest(config: Config, request: Pick<HttpRequest, 'method' | 'url' | 'headers' | 'body'>): Observable<HttpResponse> {
  return config.transport.http({
    ...request,
    timeoutMs: config.requestTimeoutMs,
    maxBodyBytes: config.maxBodyBytes,
    ...(config.localAddress !== undefined ? { localAddress: config.localAddress } : {}),
    scheduler: config.transport.scheduler,
  });
}

function readDescription(
  response: HttpResponse,
  descriptionUrl: string,
  rewriteOrigins: readonly string[],
  maxBodyBytes: number,
): DeviceDescription | ProtocolError {
  if (response.status >= 300 && response.status < 400) {
    return new ProtocolError('upnp', 'redirect', `description answered a redirect (HTTP ${response.status}), not followed`, descriptionUrl);
  }
  if (response.status !== 200) {
    return new ProtocolError('upnp', 'http-status', `description answered HTTP ${response.status}`, descriptionUrl);
  }
  return parseDescription(response.body.toString('utf8'), descriptionUrl, { rewriteOrigins, maxBytes: maxBodyBytes });
}

/**
 * The first service whose GetStatusInfo says `Connected`; else the first whose GetStatusInfo
 * failed with a fault or an undecodable answer (still usable); else a `not-connected` error.
 * A timeout or refused connection makes the gateway invalid. Services are asked one after the
 * other (`concatMap`: no operator nesting that grows with their number), at most
 * {@link MAX_CHECKED_SERVICES} of them.
 */
function chooseConnected(candidates: readonly UpnpGateway[]): Observable<UpnpNat> {
  return defer(() => {
    const checked = candidates.slice(0, MAX_CHECKED_SERVICES);
    let fallback: UpnpGateway | undefined;
    let status: string | undefined;
    return from(checked).pipe(
      concatMap((candidate) =>
        candidate.statusInfo().pipe(
          map((info) => ({ candidate, connected: info.connectionStatus === 'Connected', failed: false, status: info.connectionStatus })),
          catchError((error: unknown) =>
            error instanceof GatewayError || error instanceof ProtocolError
              ? of({ candidate, connected: false, failed: true, status: 'GetStatusInfo failed' })
              : throwError(() => error),
          ),
        ),
      ),
      tap((result) => {
        if (result.connected) return;
        if (result.failed) fallback ??= result.candidate;
        status = result.status;
      }),
      first((result) => result.connected, null),
      mergeMap((result) => {
        if (result !== null) return of(result.candidate);
        if (fallback) return of(fallback);
        const last = checked[checked.length - 1];
        return throwError(
          () => new ProtocolError('upnp', 'not-connected', `the WAN connection is not connected (${status ?? 'unknown'})`, last?.service.controlUrl),
        );
      }),
    );
  });
}

/**
 * The bound on HTTP requests in flight to one gateway (routers choke on concurrency): at most
 * `maxConcurrentRequests`, the others wait in arrival order. One per discovered device, shared by
 * its services and every call made through its {@link UpnpNat}.
 *
 * It lives here, not only in the core's per-gateway queue, because not every caller goes through
 * the core: discovery fetches the description and asks GetStatusInfo before any Nat exists, the
 * CLI (`list`, `unmap`, `status`, `discover`) and library users call a Nat's methods directly.
 * For calls from the core it never makes one wait: the core lets at most as many calls run as
 * this bound, and each call sends its requests one after another. It is the core's own
 * {@link priorityQueue}, every request at one priority, so there is one limiter implementation.
 */
type RequestLimit = <T>(request: Observable<T>) => Observable<T>;

function requestLimit(maxConcurrentRequests: number): RequestLimit {
  const queue = priorityQueue(maxConcurrentRequests);
  return (request) => queue(request, 0);
}

interface AddState {
  /** A lease-0 retry after 402 was already made. */
  readonly leaseRetried: boolean;
  /** The 724 retry with external = internal port was already made. */
  readonly samePortRetried: boolean;
  /** Random ports tried after 718 (IGDv1). */
  readonly conflicts: number;
}

class UpnpGateway implements UpnpNat {
  readonly kind = 'upnp' as const;
  readonly name: string;
  readonly gateway: string;
  readonly maxConcurrentRequests: number;
  private permanentOnly = false;

  constructor(
    private readonly config: Config,
    private readonly limit: RequestLimit,
    readonly description: DeviceDescription,
    readonly service: WanConnectionService,
    readonly internalClient: string,
  ) {
    this.gateway = description.descriptionUrl;
    this.name = `upnp(${new URL(description.descriptionUrl).hostname})`;
    this.maxConcurrentRequests = config.maxConcurrentRequests;
  }

  get permanentLeasesOnly(): boolean {
    return this.permanentOnly;
  }

  addMapping(request: NatMappingRequest): Observable<MappingGrant> {
    return defer(() => {
      const externalPort = request.previous?.externalPort ?? request.externalPort;
      const lease = this.permanentOnly ? 0 : request.lifetimeSeconds;
      return this.add(request, externalPort, lease, { leaseRetried: false, samePortRetried: false, conflicts: 0 });
    });
  }

  deleteMapping(grant: MappingGrant): Observable<void> {
    return this.call(encodeDeletePortMapping(this.service.serviceType, { externalPort: grant.externalPort, protocol: grant.protocol })).pipe(
      ignoreElements(),
      // 714 NoSuchEntryInArray: already gone (expired, router rebooted): the goal is reached.
      catchError((error: unknown) => (error instanceof GatewayError && error.resultCode === 714 ? EMPTY : throwError(() => error))),
    );
  }

  externalIp(): Observable<string> {
    return this.call(encodeGetExternalIPAddress(this.service.serviceType)).pipe(
      map((values) => {
        const ip = readExternalIp(values, this.service.controlUrl);
        if (ip instanceof ProtocolError) throw ip;
        return ip;
      }),
    );
  }

  statusInfo(): Observable<StatusInfo> {
    return this.call(encodeGetStatusInfo(this.service.serviceType)).pipe(map(readStatusInfo));
  }

  specificMapping(protocol: MappingProtocol, externalPort: number): Observable<PortMappingEntry | null> {
    const key = { protocol, externalPort };
    return this.call(encodeGetSpecificPortMappingEntry(this.service.serviceType, key)).pipe(
      map((values): PortMappingEntry | null => {
        const entry = readPortMappingEntry(values, key, this.service.controlUrl);
        if (entry instanceof ProtocolError) throw entry;
        return entry;
      }),
      catchError((error: unknown) => (error instanceof GatewayError && error.resultCode === 714 ? of(null) : throwError(() => error))),
    );
  }

  /**
   * Whether the router still forwards `grant` to us: its entry exists, forwards to this host and
   * the grant's internal port, and is enabled. Another host's entry on the port is `false` too.
   */
  checkMapping(grant: MappingGrant): Observable<boolean> {
    return this.specificMapping(grant.protocol, grant.externalPort).pipe(
      map((entry) => entry !== null && entry.enabled && entry.internalPort === grant.internalPort && sameHost(entry.internalClient, this.internalClient)),
    );
  }

  listMappings(): Observable<readonly PortMappingEntry[]> {
    const max = this.config.maxListedMappings;
    const fetch = (index: number): Observable<{ index: number; values: ReadonlyMap<string, string> | null }> =>
      this.call(encodeGetGenericPortMappingEntry(this.service.serviceType, index)).pipe(
        map((values) => ({ index, values })),
        // 713 SpecifiedArrayIndexInvalid ends the table; some routers answer 714 instead.
        catchError((error: unknown) =>
          error instanceof GatewayError && (error.resultCode === 713 || error.resultCode === 714) ? of({ index, values: null }) : throwError(() => error),
        ),
      );
    if (max === 0) return of([]);
    return fetch(0).pipe(
      expand((r) => (r.values === null || r.index + 1 >= max ? EMPTY : fetch(r.index + 1)), 1),
      takeWhile((r): r is { index: number; values: ReadonlyMap<string, string> } => r.values !== null),
      map((r) => readPortMappingEntry(r.values, undefined, this.service.controlUrl)),
      // Entries that are not TCP/UDP or are malformed are skipped, not fatal.
      filter((entry): entry is PortMappingEntry => !(entry instanceof ProtocolError)),
      toArray(),
    );
  }

  private add(request: NatMappingRequest, externalPort: number, lease: number, state: AddState): Observable<MappingGrant> {
    return this.call(encodeAddPortMapping(this.service.serviceType, this.mappingArgs(request, externalPort, lease))).pipe(
      map(() => grantOf(request, externalPort, lease)),
      catchError((error: unknown) => this.recover(error, request, externalPort, lease, state)),
    );
  }

  private addAny(request: NatMappingRequest, externalPort: number, lease: number): Observable<MappingGrant> {
    return this.call(encodeAddAnyPortMapping(this.service.serviceType, this.mappingArgs(request, externalPort, lease))).pipe(
      map((values) => {
        const reserved = readReservedPort(values, this.service.controlUrl);
        if (reserved instanceof ProtocolError) throw reserved;
        return grantOf(request, reserved, lease);
      }),
      catchError((error: unknown) => {
        if (error instanceof GatewayError && error.resultCode === 725 && lease !== 0) {
          this.permanentOnly = true;
          return this.addAny(request, externalPort, 0);
        }
        return throwError(() => error);
      }),
    );
  }

  private recover(error: unknown, request: NatMappingRequest, externalPort: number, lease: number, state: AddState): Observable<MappingGrant> {
    if (!(error instanceof GatewayError)) return throwError(() => error);
    switch (error.resultCode) {
      case 725: // OnlyPermanentLeasesSupported
        if (lease !== 0) {
          this.permanentOnly = true;
          return this.add(request, externalPort, 0, state);
        }
        break;
      case 402: // InvalidArgs: some routers reject any lease duration this way.
        if (lease !== 0 && !state.leaseRetried) {
          return this.add(request, externalPort, 0, { ...state, leaseRetried: true }).pipe(
            tap(() => (this.permanentOnly = true)),
            catchError((retryError: unknown) => throwError(() => (retryError instanceof GatewayError && retryError.resultCode === 402 ? error : retryError))),
          );
        }
        break;
      case 724: // SamePortValuesRequired
        if (!state.samePortRetried && externalPort !== request.internalPort) {
          return this.add(request, request.internalPort, lease, { ...state, samePortRetried: true });
        }
        break;
      case 718: // ConflictInMappingEntry
        if (this.service.version === 2) return this.addAny(request, externalPort, lease);
        if (state.conflicts < this.config.conflictRetries) {
          return this.add(request, this.randomPort(externalPort), lease, { ...state, conflicts: state.conflicts + 1 });
        }
        break;
      case 727: // ExternalPortOnlySupportsWildcard
        return throwError(
          () =>
            new GatewayError({
              protocol: 'upnp',
              resultCode: error.resultCode,
              resultName: error.resultName,
              gateway: error.gateway,
              message: 'the gateway only accepts a wildcard external port, which cannot be used for a port mapping',
            }),
        );
    }
    return throwError(() => error);
  }

  private randomPort(avoid: number): number {
    for (let i = 0; i < 8; i++) {
      const port = CONFLICT_PORT_LOW + Math.floor(this.config.random() * (CONFLICT_PORT_HIGH - CONFLICT_PORT_LOW + 1));
      if (port !== avoid && port >= CONFLICT_PORT_LOW && port <= CONFLICT_PORT_HIGH) return port;
    }
    return avoid === CONFLICT_PORT_LOW ? CONFLICT_PORT_LOW + 1 : CONFLICT_PORT_LOW;
  }

  private mappingArgs(request: NatMappingRequest, externalPort: number, lease: number): PortMappingArguments {
    return {
      remoteHost: '', // always the wildcard: 726 RemoteHostOnlySupportsWildcard cannot happen
      externalPort,
      protocol: request.protocol,
      internalPort: request.internalPort,
      internalClient: this.internalClient,
      description: request.description,
      leaseDurationSeconds: lease,
    };
  }

  /** POSTs one action to the control URL; emits its output arguments, or errors typed. */
  private call(request: SoapRequest): Observable<ReadonlyMap<string, string>> {
    const controlUrl = this.service.controlUrl;
    const log = (message: string): void => this.config.logger.debug('rxnat:upnp', `${request.action} ${controlUrl}: ${message}`);
    return this.limit(httpRequest(this.config, { method: 'POST', url: controlUrl, headers: request.headers, body: request.body }))
      .pipe(
        map((response) => {
          const decoded = decodeSoapResponse(response.body.toString('utf8'), request.action, {
            status: response.status,
            gateway: controlUrl,
            maxBytes: this.config.maxBodyBytes,
          });
          if (decoded instanceof ProtocolError) throw decoded;
          if (decoded.kind === 'fault') throw faultToError(decoded, controlUrl);
          return decoded.values;
        }),
        tap({
          subscribe: () => log('sent'),
          next: (values) => log(`answered ${JSON.stringify(Object.fromEntries(values))}`),
          error: (error: Error) => log(`failed: ${error.message}`),
        }),
      );
  }
}

function grantOf(request: NatMappingRequest, externalPort: number, lease: number): MappingGrant {
  return { protocol: request.protocol, internalPort: request.internalPort, externalPort, lifetimeSeconds: lease };
}


/** Two spellings of one host address (case, IPv4-mapped IPv6); an empty one is taken as ours (some routers leave it out). */
function sameHost(reported: string, ours: string): boolean {
  const plain = (address: string): string => address.trim().toLowerCase().replace(/^::ffff:/, '');
  return reported.trim() === '' || plain(reported) === plain(ours);
}
