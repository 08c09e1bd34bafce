/**
 * UPnP IGDv2 IPv6 firewall pinholes (`WANIPv6FirewallControl:1`) as a {@link Nat}: a pinhole is
 * a mapping without translation, so the mapping core (`mapPort`) adds, renews and deletes it
 * like any other mapping.
 *
 * @packageDocumentation
 */
import { catchError, concatMap, defer, distinct, EMPTY, first, ignoreElements, map, mergeMap, of, take, tap, throwError, type Observable } from 'rxjs';
import { isIpv4, parseIpv6 } from '../../core/address.js';
import { priorityQueue } from '../../core/gateway-context.js';
import { debugLogger, type Logger } from '../../core/logger.js';
import type { MappingGrant, MappingProtocol, Nat, NatMappingRequest } from '../../core/nat.js';
import { GatewayError, GatewayTimeoutError, ProtocolError } from '../../errors.js';
import type { HttpRequest } from '../../transport/http.js';
import { nodeTransport, type Transport } from '../../transport/transport.js';
import type { UpnpNat } from './client.js';
import { firewallControlService, parseDescription, WAN_IPV6_FIREWALL_CONTROL_1, type DeviceDescription, type FirewallControlService } from './description.js';
import {
  encodeAddPinhole,
  encodeCheckPinholeWorking,
  encodeDeletePinhole,
  encodeGetFirewallStatus,
  encodeGetOutboundPinholeTimeout,
  encodeGetPinholePackets,
  encodeUpdatePinhole,
  firewallErrorName,
  firewallFaultToError,
  pinholeLeaseSeconds,
  readFirewallStatus,
  readIsWorking,
  readOutboundPinholeTimeout,
  readPinholePackets,
  readUniqueId,
  type FirewallStatus,
  type PinholeFilter,
} from './firewall-soap.js';
import { decodeSoapResponse, type SoapRequest } from './soap.js';
import { decodeSsdpResponse, encodeMSearch, SSDP_PORT } from './ssdp.js';
import type { SsdpTarget } from './ssdp-search.js';

/**
 * The IPv6 SSDP multicast group of link-local scope, `[ff02::c]:1900`.
 *
 * @example
 * ```ts
 * upnpPinhole({ ssdpTargets: [SSDP_IPV6_LINK_LOCAL_TARGET] });
 * ```
 */
export const SSDP_IPV6_LINK_LOCAL_TARGET: SsdpTarget = Object.freeze({ address: 'ff02::c', port: SSDP_PORT });

/**
 * What an IPv6 M-SEARCH for pinholes asks for: the firewall service itself, and IGDv2 (the only
 * IGD that can hold it).
 *
 * @example
 * ```ts
 * PINHOLE_SEARCH_TARGETS[0]; // 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1'
 * ```
 */
export const PINHOLE_SEARCH_TARGETS: readonly string[] = Object.freeze([WAN_IPV6_FIREWALL_CONTROL_1, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2']);

/** Most distinct LOCATIONs one pinhole search fetches, one after the other. */
export const MAX_PINHOLE_PROBES = 8;

/**
 * Options shared by {@link upnpPinhole} and {@link upnpPinholeVia}.
 *
 * @example
 * ```ts
 * const options: UpnpPinholeCommonOptions = { internalClient: '2001:db8::10', requestTimeoutMs: 2000 };
 * ```
 */
export interface UpnpPinholeCommonOptions {
  /**
   * This host's IPv6 address, sent as `InternalClient` and reported as the external address.
   * Default: the local address of the connection to the gateway, when that is IPv6. A gateway
   * reached over IPv4 needs it (else discovery fails with reason `no-ipv6-address`).
   */
  readonly internalClient?: string;
  /**
   * Send the SOAP requests to this host (an IPv6 address of the router, without zone) on the
   * control URL's port and path, instead of the control URL's own host. miniupnpd accepts
   * AddPinhole only over IPv6 from the `InternalClient` address itself (606 otherwise), so an
   * IGD found over IPv4 needs it.
   */
  readonly controlHost?: string;
  /** Local address HTTP connections are bound to. */
  readonly localAddress?: string;
  /** Deadline of each HTTP request in ms. Default 3000. */
  readonly requestTimeoutMs?: number;
  /** Most HTTP requests in flight to the gateway at once. Default 1. */
  readonly maxConcurrentRequests?: number;
  /** Largest HTTP response body accepted, in bytes. Default 262 144. */
  readonly maxBodyBytes?: number;
  /** Where every SOAP action and its answer are logged (`rxnat:upnp`). Default {@link debugLogger}. */
  readonly logger?: Logger;
  /** The I/O (HTTP, SSDP's UDP collection, the scheduler of deadlines). Default the real one. */
  readonly transport?: Transport;
}

/**
 * Options of {@link upnpPinhole}.
 *
 * @example
 * ```ts
 * upnpPinhole({ descriptionUrl: 'http://[fd77::1]:5000/rootDesc.xml' });
 * upnpPinhole({ ssdpTargets: [{ address: '::1', port: 41900 }], timeoutMs: 2000 });
 * ```
 */
export interface UpnpPinholeOptions extends UpnpPinholeCommonOptions {
  /** Skip SSDP and use this device description URL (`http:`; an IPv6 host in brackets). */
  readonly descriptionUrl?: string;
  /**
   * Where the IPv6 M-SEARCH goes when there is no `descriptionUrl`: IPv6 addresses only.
   * Default {@link SSDP_IPV6_LINK_LOCAL_TARGET} (`[ff02::c]:1900`, sent on the default multicast
   * interface; the socket never joins the group). Tests pass a loopback target (`::1`).
   */
  readonly ssdpTargets?: readonly SsdpTarget[];
  /** SSDP window in ms (ends earlier, at the first gateway with the service). Default 2000. */
  readonly timeoutMs?: number;
  /** Delay between M-SEARCH rounds inside the window, in ms. Default `timeoutMs / 4`. */
  readonly ssdpRepeatIntervalMs?: number;
  /** MX of the M-SEARCH, in seconds. Default 1. */
  readonly mxSeconds?: number;
}

/**
 * What a pinhole grant keeps in its `token`: the pinhole's UniqueID and the address it opens.
 *
 * @example
 * ```ts
 * const { uniqueId } = grant.token as PinholeToken;
 * ```
 */
export interface PinholeToken {
  readonly kind: 'upnp-pinhole';
  /** AddPinhole's `UniqueID`: what UpdatePinhole and DeletePinhole name. */
  readonly uniqueId: number;
  /** The `InternalClient` it was opened for. */
  readonly internalClient: string;
}

/**
 * The {@link PinholeToken} of a grant made by a {@link UpnpPinholeNat}, or `undefined`.
 *
 * @example
 * ```ts
 * pinholeTokenOf(grant)?.uniqueId; // 7
 * ```
 */
export function pinholeTokenOf(grant: MappingGrant | undefined): PinholeToken | undefined {
  const token = grant?.token as Partial<PinholeToken> | null | undefined;
  return token !== null &&
    typeof token === 'object' &&
    token.kind === 'upnp-pinhole' &&
    Number.isInteger(token.uniqueId) &&
    typeof token.internalClient === 'string'
    ? (token as PinholeToken)
    : undefined;
}

/**
 * An IPv6 firewall of a UPnP IGDv2 as a {@link Nat}. `addMapping` opens a pinhole (AddPinhole)
 * for `internalPort` on {@link UpnpPinholeNat.internalClient}, and renews it with UpdatePinhole
 * when the request carries the previous grant (a fresh AddPinhole if the gateway forgot it:
 * 704); the grant's external port is the internal port (no translation), its external address
 * the host's own, its lifetime the LeaseTime sent (0 and anything above a day ask for 86400 s:
 * pinholes are never permanent). A request's `internalAddress` (an IPv6 address) opens that
 * address instead of `internalClient`; a request of another `family` than `'ipv6'` fails with a
 * {@link ProtocolError} of reason `family`. `deleteMapping` is DeletePinhole (704 counts as
 * done). `externalIp()` emits `internalClient`.
 *
 * @example
 * ```ts
 * upnpPinhole({ descriptionUrl }).pipe(switchMap((nat) => mapPort(nat, { protocol: 'tcp', internalPort: 8080 })));
 * ```
 */
export interface UpnpPinholeNat extends Nat {
  readonly kind: 'upnp-pinhole';
  /** Pinholes are IPv6 firewall openings. */
  readonly family: 'ipv6';
  /** The description URL. */
  readonly gateway: string;
  /** The control URL requests go to (after `controlHost`). */
  readonly endpoint: string;
  readonly maxConcurrentRequests: number;
  readonly description: DeviceDescription;
  /** The firewall control service, its control URL as the description gives it. */
  readonly service: FirewallControlService;
  /** This host's IPv6 address: `InternalClient` of every pinhole, and the external address. */
  readonly internalClient: string;
  /** GetFirewallStatus as read at discovery; `null` when the gateway did not answer it usably. */
  readonly firewallStatus: FirewallStatus | null;
  /** GetFirewallStatus now. */
  getFirewallStatus(): Observable<FirewallStatus>;
  /** GetOutboundPinholeTimeout for a flow of this host (`internalClient` filled in): seconds. */
  outboundPinholeTimeout(flow: Omit<PinholeFilter, 'internalClient'>): Observable<number>;
  /** GetPinholePackets for a pinhole this NAT opened: packets let through so far. */
  pinholePackets(grant: MappingGrant): Observable<number>;
  /**
   * CheckPinholeWorking for a pinhole this NAT opened: `true`/`false`, or `null` when the gateway
   * cannot tell yet (709 NoPacketSent: nothing has come through). Optional in the service:
   * gateways without it fail with 401 or 602.
   */
  checkPinholeWorking(grant: MappingGrant): Observable<boolean | null>;
}

interface Config {
  readonly internalClient: string | undefined;
  readonly controlHost: string | undefined;
  readonly localAddress: string | undefined;
  readonly requestTimeoutMs: number;
  readonly maxConcurrentRequests: number;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  readonly transport: Transport;
}

type RequestLimit = <T>(request: Observable<T>) => Observable<T>;

function configOf(options: UpnpPinholeCommonOptions): Config {
  return {
    internalClient: options.internalClient,
    controlHost: options.controlHost,
    localAddress: options.localAddress,
    requestTimeoutMs: options.requestTimeoutMs ?? 3000,
    maxConcurrentRequests: Math.max(1, Math.floor(options.maxConcurrentRequests ?? 1)),
    maxBodyBytes: options.maxBodyBytes ?? 256 * 1024,
    logger: options.logger ?? debugLogger,
    transport: options.transport ?? nodeTransport,
  };
}

/**
 * Finds a UPnP gateway's IPv6 firewall control and emits it as a {@link UpnpPinholeNat}, then
 * completes. Cold: each subscription searches anew.
 *
 * With `descriptionUrl`, that description is fetched (over IPv4 or IPv6). Without it, an M-SEARCH
 * for WANIPv6FirewallControl:1 and IGD:2 goes to `ssdpTargets` (default `[ff02::c]:1900`), and
 * the answering descriptions are checked one after the other; a LOCATION is fetched only from
 * the address that answered (rewritten to it), except that a link-local responder may name one
 * IPv6 literal of its own (miniupnpd answers from fe80:: and names its ULA or global address).
 *
 * Then GetFirewallStatus is asked once: a firewall that is off fails discovery with a
 * {@link GatewayError} 702 `FirewallDisabled`, one that allows no pinholes with 703
 * `InboundPinholeNotAllowed`; a gateway that does not answer it usably is still used. Other
 * errors: {@link ProtocolError} reasons `no-firewall-service`, `foreign-control-url`,
 * `no-ipv6-address` (the gateway was reached over IPv4 and no `internalClient` was given),
 * `bad-location`; a {@link GatewayTimeoutError} when no gateway answered the search.
 *
 * @example
 * ```ts
 * upnpPinhole({ descriptionUrl: 'http://[fd77::1]:5000/rootDesc.xml' })
 *   .pipe(switchMap((nat) => mapPort(nat, { protocol: 'tcp', internalPort: 8080, lifetimeSeconds: 3600 })))
 *   .subscribe((state) => console.log(state.status, state.externalIp, state.externalPort));
 * ```
 */
export function upnpPinhole(options: UpnpPinholeOptions = {}): Observable<UpnpPinholeNat> {
  return defer(() => {
    const config = configOf(options);
    const limit = requestLimit(config.maxConcurrentRequests);
    if (options.descriptionUrl !== undefined) return probe(config, limit, options.descriptionUrl, []);
    const targets = options.ssdpTargets ?? [SSDP_IPV6_LINK_LOCAL_TARGET];
    const windowMs = options.timeoutMs ?? 2000;
    const bad = targets.find((t) => parseIpv6(t.address) === undefined);
    if (bad !== undefined) {
      return throwError(() => new ProtocolError('ssdp', 'not-ipv6', `pinhole search targets are IPv6 addresses; got ${bad.address}`));
    }
    let lastError: Error | undefined;
    return search(config, targets, windowMs, options).pipe(
      distinct((answer) => answer.href),
      take(MAX_PINHOLE_PROBES),
      // One description at a time: the first gateway with a usable firewall service wins.
      concatMap((answer) =>
        probe(config, limit, answer.href, answer.rewriteOrigins).pipe(
          catchError((error: unknown) => {
            lastError = error instanceof Error ? error : new Error(String(error));
            return EMPTY;
          }),
        ),
      ),
      first(undefined, null),
      mergeMap((nat) => {
        if (nat !== null) return of(nat);
        const where = targets.map((t) => `[${t.address}]:${t.port}`).join(', ');
        return throwError(() => lastError ?? new GatewayTimeoutError('upnp', `ssdp(${where})`, windowMs));
      }),
    );
  });
}

/**
 * The IPv6 firewall control of an IGD already found (over IPv4, the common case: `upnp()`), as a
 * {@link UpnpPinholeNat}: its description is not fetched again. Give `internalClient` (this
 * host's global IPv6 address) unless the IGD was reached over IPv6, and `controlHost` (the
 * router's IPv6 address) for gateways that, like miniupnpd, accept pinholes only over IPv6.
 *
 * @example
 * ```ts
 * upnp().pipe(switchMap((igd) => upnpPinholeVia(igd, { internalClient: '2001:db8::10', controlHost: '2001:db8::1' })));
 * ```
 */
export function upnpPinholeVia(nat: UpnpNat, options: UpnpPinholeCommonOptions = {}): Observable<UpnpPinholeNat> {
  return defer(() => {
    const config = configOf({ ...(nat.internalClient.includes(':') ? { internalClient: nat.internalClient } : {}), ...options });
    return fromDescription(config, requestLimit(config.maxConcurrentRequests), nat.description, undefined);
  });
}

interface SearchAnswer {
  readonly href: string;
  readonly rewriteOrigins: readonly string[];
}

/** The IPv6 M-SEARCH: every answer whose LOCATION may be fetched, in arrival order. */
function search(config: Config, targets: readonly SsdpTarget[], windowMs: number, options: UpnpPinholeOptions): Observable<SearchAnswer> {
  const mxSeconds = options.mxSeconds ?? 1;
  const datagrams = targets.flatMap((to) =>
    PINHOLE_SEARCH_TARGETS.map((searchTarget) => ({ message: encodeMSearch({ searchTarget, mxSeconds, host: `[FF02::C]:${SSDP_PORT}` }), to })),
  );
  return config.transport
    .udpCollect({
      protocol: 'upnp',
      datagrams,
      windowMs,
      repeatIntervalMs: Math.max(100, options.ssdpRepeatIntervalMs ?? Math.floor(windowMs / 4)),
      ...(config.localAddress !== undefined ? { localAddress: config.localAddress } : {}),
      scheduler: config.transport.scheduler,
    })
    .pipe(
      mergeMap(({ message, remote }) => {
        const decoded = decodeSsdpResponse(message, remote.address);
        if (decoded instanceof ProtocolError) return EMPTY;
        config.logger.debug('rxnat:upnp', `SSDP (IPv6) answer from [${remote.address}]:${remote.port}: ST ${decoded.st}, LOCATION ${decoded.location}`);
        if (!PINHOLE_SEARCH_TARGETS.includes(decoded.st.trim())) return EMPTY;
        const answer = locationToFetch(decoded.location, remote.address);
        if (answer instanceof ProtocolError) {
          config.logger.debug('rxnat:upnp', answer.message);
          return EMPTY;
        }
        return of(answer);
      }),
      catchError((error: unknown) => throwError(() => new ProtocolError('ssdp', 'socket', `SSDP socket failed: ${error instanceof Error ? error.message : String(error)}`))),
    );
}

/**
 * Where an answer's LOCATION is fetched from: the responder's own address. A LOCATION naming
 * another host is rewritten to the responder, except from a link-local responder (its address
 * has a zone, which a URL cannot carry), which may name an IPv6 literal that is not link-local.
 */
function locationToFetch(location: string, from: string): SearchAnswer | ProtocolError {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return new ProtocolError('ssdp', 'bad-location', `LOCATION ${JSON.stringify(location)} is not a URL`, from);
  }
  if (url.protocol !== 'http:') return new ProtocolError('ssdp', 'bad-location', `LOCATION ${url.href} is not an http: URL`, from);
  const responder = from.replace(/%.*$/, '');
  const named = url.hostname.replace(/^\[|\]$/g, '');
  if (sameIpv6(named, responder)) return { href: url.href, rewriteOrigins: [] };
  const responderGroups = parseIpv6(responder);
  const linkLocal = (groups: number[] | undefined): boolean => groups !== undefined && (groups[0]! & 0xffc0) === 0xfe80;
  if (linkLocal(responderGroups)) {
    const namedGroups = parseIpv6(named);
    if (namedGroups !== undefined && !linkLocal(namedGroups) && !isIpv4(named)) return { href: url.href, rewriteOrigins: [] };
    return new ProtocolError('ssdp', 'bad-location', `link-local responder ${from} named ${url.host}, not an IPv6 address of its own`, from);
  }
  if (responderGroups === undefined) return new ProtocolError('ssdp', 'bad-location', `responder ${from} is not an IPv6 address`, from);
  const origin = url.origin;
  url.hostname = `[${responder}]`;
  return { href: url.href, rewriteOrigins: [origin] };
}

function sameIpv6(a: string, b: string): boolean {
  const x = parseIpv6(a);
  const y = parseIpv6(b);
  return x !== undefined && y !== undefined && x.every((g, i) => g === y[i]);
}

/** Fetches one description and builds its pinhole NAT. */
function probe(config: Config, limit: RequestLimit, descriptionUrl: string, rewriteOrigins: readonly string[]): Observable<UpnpPinholeNat> {
  return limit(httpRequest(config, { method: 'GET', url: descriptionUrl })).pipe(
    mergeMap((response) => {
      if (response.status >= 300 && response.status < 400) {
        return throwError(() => new ProtocolError('upnp', 'redirect', `description answered a redirect (HTTP ${response.status}), not followed`, descriptionUrl));
      }
      if (response.status !== 200) return throwError(() => new ProtocolError('upnp', 'http-status', `description answered HTTP ${response.status}`, descriptionUrl));
      const description = parseDescription(response.body.toString('utf8'), descriptionUrl, { rewriteOrigins, maxBytes: config.maxBodyBytes });
      if (description instanceof ProtocolError) return throwError(() => description);
      return fromDescription(config, limit, description, response.localAddress);
    }),
  );
}

/**
 * The pinhole NAT of a description: its firewall service, GetFirewallStatus asked once (which
 * also tells the local address the gateway sees), `internalClient` settled.
 */
function fromDescription(config: Config, limit: RequestLimit, description: DeviceDescription, localAddress: string | undefined): Observable<UpnpPinholeNat> {
  const service = firewallControlService(description);
  if (service instanceof ProtocolError) return throwError(() => service);
  let controlUrl: string;
  try {
    controlUrl = withHost(service.controlUrl, config.controlHost);
  } catch {
    return throwError(() => new ProtocolError('upnp', 'bad-url', `controlHost ${JSON.stringify(config.controlHost)} is not a host`, service.controlUrl));
  }
  const call = soapCaller(config, limit, controlUrl);
  // The local address of the GetFirewallStatus exchange, whatever its answer: the address this
  // host reaches the control URL from (the InternalClient miniupnpd insists on).
  let seen: string | undefined;
  return call(encodeGetFirewallStatus(service.serviceType), (address) => (seen = address)).pipe(
    map(({ values }): FirewallStatus | null => {
      const status = readFirewallStatus(values, controlUrl);
      return status instanceof ProtocolError ? null : status;
    }),
    catchError((error: unknown) => {
      // A gateway that answers GetFirewallStatus with a fault (other than the two that say
      // pinholes are impossible) or with nonsense is still tried: AddPinhole will tell.
      if (error instanceof GatewayError && error.resultCode !== 702 && error.resultCode !== 703) return of(null);
      if (error instanceof ProtocolError) return of(null);
      return throwError(() => error);
    }),
    map((status) => {
      if (status && !status.firewallEnabled) throw statusError(702, controlUrl, 'the IPv6 firewall is disabled: inbound IPv6 is not filtered, no pinhole can be opened');
      if (status && !status.inboundPinholeAllowed) throw statusError(703, controlUrl, 'the gateway allows no inbound pinholes');
      const internalClient = ipv6Client(config.internalClient ?? seen ?? localAddress);
      if (internalClient === undefined) {
        throw new ProtocolError(
          'upnp',
          'no-ipv6-address',
          `no IPv6 address for InternalClient (the gateway was reached from ${JSON.stringify(config.internalClient ?? seen ?? localAddress ?? null)}): pass internalClient, and controlHost for gateways that take pinholes over IPv6 only`,
          controlUrl,
        );
      }
      return new PinholeGateway(config, call, description, service, controlUrl, internalClient, status);
    }),
  );
}

function statusError(code: 702 | 703, gateway: string, message: string): GatewayError {
  return new GatewayError({ protocol: 'upnp', resultCode: code, resultName: firewallErrorName(code), gateway, message: `GetFirewallStatus: ${message}` });
}

/** An IPv6 address without zone, not IPv4-mapped; `undefined` otherwise. */
function ipv6Client(address: string | undefined): string | undefined {
  const bare = address?.replace(/%.*$/, '');
  if (bare === undefined) return undefined;
  const groups = parseIpv6(bare);
  if (groups === undefined) return undefined;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  return mapped ? undefined : bare;
}

function withHost(controlUrl: string, host: string | undefined): string {
  if (host === undefined) return controlUrl;
  const bare = host.replace(/^\[|\]$/g, '');
  const url = new URL(controlUrl);
  if (parseIpv6(bare) !== undefined) url.hostname = `[${bare}]`;
  else if (/^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/i.test(bare)) url.hostname = bare;
  else throw new RangeError(`not a host: ${host}`);
  return url.href;
}

function httpRequest(config: Config, request: Pick<HttpRequest, 'method' | 'url' | 'headers' | 'body'>): ReturnType<Transport['http']> {
  return config.transport.http({
    ...request,
    timeoutMs: config.requestTimeoutMs,
    maxBodyBytes: config.maxBodyBytes,
    ...(config.localAddress !== undefined ? { localAddress: config.localAddress } : {}),
    scheduler: config.transport.scheduler,
  });
}

function requestLimit(maxConcurrentRequests: number): RequestLimit {
  const queue = priorityQueue(maxConcurrentRequests);
  return (request) => queue(request, 0);
}

/** One action; `onAnswer` hears the local address of the connection of any answer (a fault too). */
type SoapCall = (request: SoapRequest, onAnswer?: (localAddress: string) => void) => Observable<{ readonly values: ReadonlyMap<string, string> }>;

/** POSTs actions to the control URL; emits the output arguments, or errors typed with the pinhole names. */
function soapCaller(config: Config, limit: RequestLimit, controlUrl: string): SoapCall {
  return (request, onAnswer) => {
    const log = (message: string): void => config.logger.debug('rxnat:upnp', `${request.action} ${controlUrl}: ${message}`);
    return limit(httpRequest(config, { method: 'POST', url: controlUrl, headers: request.headers, body: request.body })).pipe(
      map((response) => {
        if (response.localAddress !== '') onAnswer?.(response.localAddress);
        const decoded = decodeSoapResponse(response.body.toString('utf8'), request.action, {
          status: response.status,
          gateway: controlUrl,
          maxBytes: config.maxBodyBytes,
        });
        if (decoded instanceof ProtocolError) throw decoded;
        if (decoded.kind === 'fault') throw firewallFaultToError(decoded, controlUrl);
        return { values: decoded.values };
      }),
      tap({
        subscribe: () => log(`sent ${request.body.length} bytes`),
        next: ({ values }) => log(`answered ${JSON.stringify(Object.fromEntries(values))}`),
        error: (error: Error) => log(`failed: ${error.message}`),
      }),
    );
  };
}

const isFault = (error: unknown, code: number): boolean => error instanceof GatewayError && error.resultCode === code;

/**
 * The request fields of IPv6 mappings (`family`, `internalAddress`), read structurally so that
 * this backend honours them wherever the core passes them.
 */
type FamilyRequest = NatMappingRequest & { readonly family?: string; readonly internalAddress?: string };

class PinholeGateway implements UpnpPinholeNat {
  readonly kind = 'upnp-pinhole' as const;
  readonly family = 'ipv6' as const;
  readonly name: string;
  readonly gateway: string;
  readonly maxConcurrentRequests: number;

  constructor(
    config: Config,
    private readonly call: SoapCall,
    readonly description: DeviceDescription,
    readonly service: FirewallControlService,
    readonly endpoint: string,
    readonly internalClient: string,
    readonly firewallStatus: FirewallStatus | null,
  ) {
    this.gateway = description.descriptionUrl;
    this.name = `upnp-pinhole(${new URL(endpoint).hostname})`;
    this.maxConcurrentRequests = config.maxConcurrentRequests;
  }

  addMapping(request: NatMappingRequest): Observable<MappingGrant> {
    return defer(() => {
      const { family, internalAddress } = request as FamilyRequest;
      if (family !== undefined && family !== 'ipv6') {
        return throwError(() => new ProtocolError('upnp', 'family', `a pinhole is an IPv6 firewall opening; this request is ${family}`, this.endpoint));
      }
      const client = internalAddress === undefined ? this.internalClient : ipv6Client(internalAddress);
      if (client === undefined || (internalAddress !== undefined && client !== internalAddress)) {
        return throwError(() => new ProtocolError('upnp', 'internal-address', `internalAddress ${JSON.stringify(internalAddress)} is not an IPv6 address without zone`, this.endpoint));
      }
      const lease = pinholeLeaseSeconds(request.lifetimeSeconds);
      const token = pinholeTokenOf(request.previous);
      if (token === undefined || token.internalClient !== client) return this.add(request, client, lease);
      return this.values(encodeUpdatePinhole(token.uniqueId, lease, this.service.serviceType)).pipe(
        map(() => this.grant(request, client, token.uniqueId, lease)),
        // 704 NoSuchEntry: the gateway forgot it (expired, rebooted): open it again.
        catchError((error: unknown) => (isFault(error, 704) ? this.add(request, client, lease) : throwError(() => error))),
      );
    });
  }

  deleteMapping(grant: MappingGrant): Observable<void> {
    return defer(() => {
      const token = pinholeTokenOf(grant);
      if (token === undefined) {
        return throwError(() => new ProtocolError('upnp', 'unique-id', 'this grant names no pinhole (no UniqueID): only pinholes opened by addMapping can be deleted', this.endpoint));
      }
      return this.values(encodeDeletePinhole(token.uniqueId, this.service.serviceType)).pipe(
        ignoreElements(),
        // 704 NoSuchEntry: already gone (expired, rebooted): the goal is reached.
        catchError((error: unknown) => (isFault(error, 704) ? EMPTY : throwError(() => error))),
      );
    });
  }

  externalIp(): Observable<string> {
    return of(this.internalClient);
  }

  getFirewallStatus(): Observable<FirewallStatus> {
    return this.values(encodeGetFirewallStatus(this.service.serviceType)).pipe(
      map((values) => {
        const status = readFirewallStatus(values, this.endpoint);
        if (status instanceof ProtocolError) throw status;
        return status;
      }),
    );
  }

  outboundPinholeTimeout(flow: Omit<PinholeFilter, 'internalClient'>): Observable<number> {
    return this.values(encodeGetOutboundPinholeTimeout({ ...flow, internalClient: this.internalClient }, this.service.serviceType)).pipe(
      map((values) => {
        const seconds = readOutboundPinholeTimeout(values, this.endpoint);
        if (seconds instanceof ProtocolError) throw seconds;
        return seconds;
      }),
    );
  }

  pinholePackets(grant: MappingGrant): Observable<number> {
    return this.withId(grant, (id) =>
      this.values(encodeGetPinholePackets(id, this.service.serviceType)).pipe(
        map((values) => {
          const packets = readPinholePackets(values, this.endpoint);
          if (packets instanceof ProtocolError) throw packets;
          return packets;
        }),
      ),
    );
  }

  checkPinholeWorking(grant: MappingGrant): Observable<boolean | null> {
    return this.withId(grant, (id) =>
      this.values(encodeCheckPinholeWorking(id, this.service.serviceType)).pipe(
        map((values): boolean | null => {
          const working = readIsWorking(values, this.endpoint);
          if (working instanceof ProtocolError) throw working;
          return working;
        }),
        catchError((error: unknown) => (isFault(error, 709) ? of(null) : throwError(() => error))),
      ),
    );
  }

  private add(request: NatMappingRequest, internalClient: string, lease: number): Observable<MappingGrant> {
    const args = { internalClient, internalPort: request.internalPort, protocol: request.protocol, leaseTimeSeconds: lease };
    return this.values(encodeAddPinhole(args, this.service.serviceType)).pipe(
      map((values) => {
        const id = readUniqueId(values, this.endpoint);
        if (id instanceof ProtocolError) throw id;
        return this.grant(request, internalClient, id, lease);
      }),
    );
  }

  private grant(
    request: { readonly protocol: MappingProtocol; readonly internalPort: number },
    internalClient: string,
    uniqueId: number,
    lease: number,
  ): MappingGrant {
    const token: PinholeToken = { kind: 'upnp-pinhole', uniqueId, internalClient };
    return { protocol: request.protocol, internalPort: request.internalPort, externalPort: request.internalPort, lifetimeSeconds: lease, externalIp: internalClient, token };
  }

  private withId<T>(grant: MappingGrant, use: (id: number) => Observable<T>): Observable<T> {
    return defer(() => {
      const token = pinholeTokenOf(grant);
      return token === undefined ? throwError(() => new ProtocolError('upnp', 'unique-id', 'this grant names no pinhole (no UniqueID)', this.endpoint)) : use(token.uniqueId);
    });
  }

  private values(request: SoapRequest): Observable<ReadonlyMap<string, string>> {
    return this.call(request).pipe(map(({ values }) => values));
  }
}
