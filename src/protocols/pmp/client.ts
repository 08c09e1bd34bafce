/**
 * The NAT-PMP (RFC 6886) backend: a {@link Nat} over {@link udpExchange}.
 *
 * @packageDocumentation
 */
import { catchError, defer, ignoreElements, map, merge, of, share, Subject, switchMap, tap, throwError, type Observable } from 'rxjs';
import type { MappingGrant, Nat, NatMappingRequest, PortMappingEntry } from '../../core/nat.js';
import { GatewayError, ProtocolError } from '../../errors.js';
import { exponentialBackoff } from '../../transport/udp.js';
import { externalAddressError, mapAnswerError } from '../answer-check.js';
import {
  announcementListener,
  GatewayEpoch,
  MappingRegistry,
  pcpOnlyAnswer,
  resolveGateway as resolveGatewayWith,
  resolvePortControlOptions,
  type PortControlOptions,
  type ResolvedPortControlOptions,
} from '../pmp-pcp-shared.js';
import { decodePcpAnnouncement } from '../pcp/codec.js';
import {
  decodePmpAnnouncement,
  decodePmpResponse,
  encodePmpRequest,
  PMP_RESPONSE_BIT,
  pmpEpochLost,
  pmpResponseOpcode,
  PmpResultCode,
  pmpResultName,
  type PmpExternalAddressResponse,
  type PmpMapRequest,
  type PmpMapResponse,
  type PmpRequest,
  type PmpResponse,
} from './codec.js';

/**
 * Options of {@link pmp}. Every field is optional; `transport` supplies the I/O (default: the
 * real sockets and routing table), as in `pmp(gateway, { transport })`.
 *
 * @example
 * ```ts
 * pmp('127.0.0.1', { port: 15351, localAddress: '127.0.0.1', probeTimeoutMs: 300 }).subscribe((nat) => console.log(nat.name));
 * ```
 */
export type PmpOptions = PortControlOptions;

/**
 * Finds a NAT-PMP gateway: on subscribe, resolves the address (the one given, else the default
 * gateway), asks it for its external address, and emits one {@link Nat} of kind `'pmp'` named
 * `pmp(<ip>)`, then completes. Cold.
 *
 * Errors: {@link GatewayTimeoutError} (no answer within `probeTimeoutMs`),
 * {@link GatewayUnreachableError} (ICMP port unreachable: NAT-PMP not served there),
 * {@link GatewayError} (the gateway answered with a result other than success, with its code
 * and the gateway: NOT_AUTHORIZED (2), NETWORK_FAILURE (3) and UNSUPPORTED_OPCODE (5) mean
 * NAT-PMP will not map there, and the message says the probe was refused; a PCP-only gateway
 * answers UNSUPPORTED_VERSION in PCP form, reported as such), {@link DefaultGatewayError} (no
 * gateway to ask).
 *
 * The Nat's `resets$` emits when a reply's epoch shows the gateway lost its mappings
 * (RFC 6886 §3.6), and when the gateway announces a reboot or a new external address
 * (RFC 6886 §3.2.1, or in PCP form from a gateway speaking both; see the `announcements`
 * option: while a mapping stream watches `resets$`,
 * the Nat listens on 0.0.0.0:5350, group 224.0.0.1, for datagrams from the gateway's address);
 * `listMappings()` lists the mappings this Nat holds.
 *
 * A success answer is a grant only when it can be one: `addMapping` fails with a
 * {@link ProtocolError} of reason `lifetime` (lifetime 0, a delete's answer) or `external-port`
 * (port 0); `externalIp()` with reason `external-address` when the gateway reports 0.0.0.0 (no
 * external address: not connected), a loopback, link-local, multicast or reserved address. Each
 * carries the gateway.
 * A delete needs only the internal port (RFC 6886 §3.4), so it also removes a mapping whose add
 * was applied but never answered.
 *
 * @example
 * ```ts
 * pmp('192.168.1.1').pipe(switchMap((nat) => nat.addMapping({ protocol: 'tcp', internalPort: 8080,
 *   externalPort: 8080, description: 'web', lifetimeSeconds: 3600 }))).subscribe((grant) => console.log(grant.externalPort));
 * ```
 */
export function pmp(gateway?: string, options: PmpOptions = {}): Observable<Nat> {
  return defer(() => {
    const resolved = resolvePortControlOptions(options);
    return resolveGatewayWith(gateway, resolved.transport.defaultGateway).pipe(
      switchMap((ip) => {
        const nat = new PmpNat(ip, resolved);
        return nat.probe().pipe(map(() => nat as Nat));
      }),
    );
  });
}

/**
 * A NAT-PMP {@link Nat} for a known gateway, without the discovery probe: for callers that
 * already know the gateway speaks NAT-PMP.
 *
 * @example
 * ```ts
 * const nat = createPmpNat('192.168.1.1');
 * nat.externalIp().subscribe(console.log);
 * ```
 */
export function createPmpNat(gateway: string, options: PmpOptions = {}): Nat {
  return new PmpNat(gateway, resolvePortControlOptions(options));
}

/**
 * The gateway address to use: the one given, else the default gateway's (kept here for the CLI;
 * the backends resolve through their transport).
 *
 * @example
 * ```ts
 * resolveGateway(undefined).subscribe((ip) => console.log('router at', ip));
 * ```
 */
export function resolveGateway(gateway: string | undefined): Observable<string> {
  return resolveGatewayWith(gateway);
}

/** A reply the NAT-PMP client accepted: a NAT-PMP response, or a PCP-only server's refusal. */
type PmpReply = { readonly kind: 'pmp'; readonly response: PmpResponse } | { readonly kind: 'pcp-only'; readonly epochSeconds: number };

/**
 * Whether `bytes` answers `request`: the exact length, the response opcode (request + 128),
 * the echoed internal port and protocol for maps; or a PCP server's 24-byte UNSUPP_VERSION for
 * the same opcode (the gateway speaks PCP only).
 */
function matchPmpReply(request: PmpRequest, bytes: Uint8Array): PmpReply | undefined {
  const expectedOpcode = pmpResponseOpcode(request);
  if (bytes[0] === 2) {
    const epochSeconds = pcpOnlyAnswer(bytes, expectedOpcode);
    return epochSeconds === undefined ? undefined : { kind: 'pcp-only', epochSeconds };
  }
  const response = decodePmpResponse(bytes);
  if (response instanceof ProtocolError) return undefined;
  switch (response.op) {
    case 'short':
      return response.opcode === expectedOpcode || (response.opcode === PMP_RESPONSE_BIT && response.resultCode === PmpResultCode.UNSUPPORTED_VERSION)
        ? { kind: 'pmp', response }
        : undefined;
    case 'external-address':
      return request.op === 'external-address' ? { kind: 'pmp', response } : undefined;
    case 'map':
      return request.op === 'map' && response.protocol === request.protocol && response.internalPort === request.internalPort
        ? { kind: 'pmp', response }
        : undefined;
  }
}

/**
 * The answers to the discovery probe (the external address request) that mean "NAT-PMP will
 * not map here" (RFC 6886 §3.5), so `pmp()` fails instead of emitting a Nat:
 * - NOT_AUTHORIZED/REFUSED (2): the box supports NAT-PMP but the user turned mapping off
 *   (what a router with the protocol "implemented but not enabled" answers).
 * - NETWORK_FAILURE (3): the box has no working uplink (no DHCP lease, no external address);
 *   nothing can be mapped until it has one.
 * - UNSUPPORTED_OPCODE (5): a server refusing opcode 0, NAT-PMP's base request, is no NAT-PMP
 *   server to map with.
 *
 * The probe fails on the other codes too (UNSUPPORTED_VERSION: not NAT-PMP version 0;
 * OUT_OF_RESOURCES and unknown codes make no sense for an address request), as it always has;
 * the three above also say in the error's message that the probe was refused.
 */
const PMP_PROBE_REFUSALS: ReadonlySet<number> = new Set<number>([PmpResultCode.NOT_AUTHORIZED, PmpResultCode.NETWORK_FAILURE, PmpResultCode.UNSUPPORTED_OPCODE]);

/**
 * How long the discovery probe's answer (the external address) stands in for the first
 * `externalIp()` call, in ms: the mapping stream that asks right after discovery.
 */
const PROBE_ANSWER_FRESH_MS = 1000;

/** The NAT-PMP {@link Nat}. */
class PmpNat implements Nat {
  readonly kind = 'pmp' as const;
  readonly name: string;
  readonly gateway: string;
  readonly endpoint: string;
  readonly maxConcurrentRequests: number;
  readonly resets$: Observable<void>;
  private readonly resets = new Subject<void>();
  private readonly epoch: GatewayEpoch;
  private readonly registry: MappingRegistry;
  private readonly now: () => number;
  /** The external address the gateway last reported (reply or announcement). */
  private externalIpSeen: string | undefined;
  /** The discovery probe's answer, until the first `externalIp()` call takes it (see there). */
  private probeAnswer: { readonly ip: string; readonly at: number } | undefined;

  constructor(
    gateway: string,
    private readonly options: ResolvedPortControlOptions,
  ) {
    this.gateway = gateway;
    this.endpoint = `${gateway}:${options.port}`;
    this.name = `pmp(${gateway})`;
    this.maxConcurrentRequests = options.maxConcurrentRequests;
    this.now = () => options.scheduler.now();
    this.epoch = new GatewayEpoch(pmpEpochLost, this.now, () => this.resets.next());
    this.registry = new MappingRegistry(this.now);
    // The announcement listener lives while someone (a mapping stream) watches resets$, and is
    // shared by all of them; what it hears goes through the same epoch check as the replies.
    this.resets$ = merge(
      this.resets,
      announcementListener(gateway, options, 'pmp').pipe(
        tap((bytes) => this.announced(bytes)),
        ignoreElements(),
      ),
    ).pipe(share());
  }

  /**
   * An announcement from the gateway: NAT-PMP's public address announcement (RFC 6886 §3.2.1),
   * or the PCP ANNOUNCE of a gateway that speaks both (RFC 6887 §14.1.3: miniupnpd multicasts
   * only that one when it starts; one server, one epoch, RFC 6887 Appendix A). A reset when its
   * epoch shows lost state (as a reply's would), or when a NAT-PMP announcement names another
   * external address than the gateway last reported (the mappings were made on the old one).
   * Anything else is logged and ignored.
   */
  private announced(bytes: Uint8Array): void {
    this.probeAnswer = undefined;
    const pcpForm = bytes[0] === 2 ? decodePcpAnnouncement(bytes) : undefined;
    const announcement = pcpForm ?? decodePmpAnnouncement(bytes);
    if (announcement instanceof ProtocolError) {
      this.options.logger.debug('rxnat:pmp', `ignored a datagram from ${this.gateway} on the announcement port: ${announcement.message}`);
      return;
    }
    const externalIp = 'externalIp' in announcement && typeof announcement.externalIp === 'string' ? announcement.externalIp : undefined;
    this.options.logger.debug('rxnat:pmp', `announcement from ${this.gateway}: epoch ${announcement.epochSeconds}${externalIp ? `, external address ${externalIp}` : ' (PCP form)'}`);
    const previousIp = this.externalIpSeen;
    if (externalIp !== undefined) this.externalIpSeen = externalIp;
    if (this.epoch.observe(announcement.epochSeconds)) return;
    if (externalIp !== undefined && previousIp !== undefined && previousIp !== externalIp) {
      this.options.logger.debug('rxnat:pmp', `${this.gateway} announced a new external address ${externalIp} (was ${previousIp}): its mappings are gone`);
      this.resets.next();
    }
  }

  /**
   * The discovery probe: an external address request within `probeTimeoutMs`. Any success
   * answer proves NAT-PMP is spoken, even one reporting no usable external address (0.0.0.0
   * while the WAN link is down): that is `externalIp()`'s error, not discovery's. Any other
   * result fails it with a {@link GatewayError}; those of {@link PMP_PROBE_REFUSALS} say so.
   */
  probe(): Observable<string> {
    return this.externalAddress(this.options.probeTimeoutMs, false).pipe(
      tap((ip) => (this.probeAnswer = { ip, at: this.now() })),
      catchError((error: unknown) => {
        if (!(error instanceof GatewayError) || !PMP_PROBE_REFUSALS.has(error.resultCode)) return throwError(() => error);
        return throwError(
          () =>
            new GatewayError({
              protocol: 'pmp',
              resultCode: error.resultCode,
              resultName: error.resultName,
              gateway: this.gateway,
              message: 'the discovery probe (external address request) was refused: NAT-PMP will not map here',
            }),
        );
      }),
    );
  }

  addMapping(request: NatMappingRequest): Observable<MappingGrant> {
    return defer(() => {
      // NAT-PMP maps IPv4 only (RFC 6886): an IPv6 request must not come back as an IPv4 mapping.
      if (request.family === 'ipv6') return throwError(() => new ProtocolError('pmp', 'family', 'NAT-PMP maps IPv4 only: an IPv6 mapping needs PCP or UPnP pinholes', this.gateway));
      const previous = sameMapping(request.previous, request) ? request.previous : undefined;
      const lifetimeSeconds = request.lifetimeSeconds > 0 ? request.lifetimeSeconds : this.options.permanentLifetimeSeconds;
      const mapRequest: PmpMapRequest = {
        op: 'map',
        protocol: request.protocol,
        internalPort: request.internalPort,
        // Renewals ask for the port granted last time (RFC 6886 §3.3); never 0, which would let
        // the gateway pick at random (and some gateways reject it).
        suggestedExternalPort: previous?.externalPort || request.externalPort || request.internalPort,
        lifetimeSeconds,
      };
      return this.exchange(mapRequest, this.options.timeoutMs).pipe(
        map(({ response, localAddress }) => {
          const answer = response as PmpMapResponse;
          // A success that cannot be a mapping (lifetime 0, external port 0) is not a grant.
          const invalid = mapAnswerError('pmp', this.gateway, answer);
          if (invalid !== undefined) throw invalid;
          const grant: MappingGrant = {
            protocol: request.protocol,
            internalPort: request.internalPort,
            externalPort: answer.externalPort,
            lifetimeSeconds: answer.lifetimeSeconds,
          };
          this.registry.set(grant, request.description, localAddress, lifetimeSeconds);
          return grant;
        }),
      );
    });
  }

  deleteMapping(grant: MappingGrant): Observable<void> {
    return defer(() => {
      // RFC 6886 §3.4: lifetime 0 and suggested external port 0 delete the mapping.
      const mapRequest: PmpMapRequest = { op: 'map', protocol: grant.protocol, internalPort: grant.internalPort, suggestedExternalPort: 0, lifetimeSeconds: 0 };
      return this.exchange(mapRequest, this.options.timeoutMs).pipe(
        map(() => this.registry.delete(grant.protocol, grant.internalPort)),
        ignoreElements(),
      );
    });
  }

  /**
   * Opcode 0, except for a call within `PROBE_ANSWER_FRESH_MS` (1 s) of the discovery probe
   * with nothing sent or heard from the gateway in between: the probe asked exactly this a moment
   * ago, so its answer is served, once (checked like a reply), and a mapping stream's first add
   * goes out one exchange sooner.
   */
  externalIp(): Observable<string> {
    return defer(() => {
      const answer = this.probeAnswer;
      this.probeAnswer = undefined;
      if (answer === undefined || this.now() - answer.at > PROBE_ANSWER_FRESH_MS) return this.externalAddress(this.options.timeoutMs, true);
      const invalid = externalAddressError('pmp', answer.ip, this.gateway, 'external address reply');
      return invalid !== undefined ? throwError(() => invalid) : of(answer.ip);
    });
  }

  listMappings(): Observable<readonly PortMappingEntry[]> {
    return defer(() => of(this.registry.list()));
  }

  /**
   * Opcode 0. With `validate`, an address that cannot be an external one (RFC 6886 §3.2:
   * 0.0.0.0 means the gateway has none; loopback, link-local, multicast) is a {@link ProtocolError} with
   * reason `external-address`.
   */
  private externalAddress(timeoutMs: number, validate: boolean): Observable<string> {
    return defer(() => this.exchange({ op: 'external-address' }, timeoutMs)).pipe(
      map(({ response }) => {
        const ip = (response as PmpExternalAddressResponse).externalIp;
        this.externalIpSeen = ip;
        const invalid = validate ? externalAddressError('pmp', ip, this.gateway, 'external address reply') : undefined;
        if (invalid !== undefined) throw invalid;
        return ip;
      }),
    );
  }

  /** One request/response; non-success results become {@link GatewayError}s. */
  private exchange(request: PmpRequest, timeoutMs: number): Observable<{ response: PmpResponse; localAddress: string }> {
    // Whatever the gateway is asked now may change what it would answer: the probe's answer is stale.
    this.probeAnswer = undefined;
    return this.options.transport.udpExchange({
      protocol: 'pmp',
      host: this.gateway,
      port: this.options.port,
      message: encodePmpRequest(request),
      accept: (bytes) => matchPmpReply(request, bytes) !== undefined,
      timeoutMs,
      retransmit: exponentialBackoff({ initialMs: this.options.initialRetransmitMs }),
      localAddress: this.options.localAddress,
      scheduler: this.options.scheduler,
      stats: this.options.stats,
      logger: this.options.logger,
    }).pipe(
      map((reply) => {
        const answer = matchPmpReply(request, reply.message);
        if (answer === undefined) throw new ProtocolError('pmp', 'unmatched', 'accepted reply no longer matches', this.gateway);
        if (answer.kind === 'pcp-only') {
          throw new GatewayError({
            protocol: 'pmp',
            resultCode: PmpResultCode.UNSUPPORTED_VERSION,
            resultName: pmpResultName(PmpResultCode.UNSUPPORTED_VERSION),
            gateway: this.gateway,
            message: 'the gateway answered in PCP (version 2): it speaks PCP only, use pcp()',
          });
        }
        this.epoch.observe(answer.response.epochSeconds);
        if (answer.response.resultCode !== PmpResultCode.SUCCESS) {
          throw new GatewayError({
            protocol: 'pmp',
            resultCode: answer.response.resultCode,
            resultName: pmpResultName(answer.response.resultCode),
            gateway: this.gateway,
          });
        }
        return { response: answer.response, localAddress: reply.local.address };
      }),
    );
  }
}

function sameMapping(previous: MappingGrant | undefined, request: NatMappingRequest): boolean {
  return previous !== undefined && previous.protocol === request.protocol && previous.internalPort === request.internalPort;
}
