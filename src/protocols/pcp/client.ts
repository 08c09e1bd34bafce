/**
 * The PCP (RFC 6887) backend: a {@link Nat} over {@link udpExchange}, falling back to NAT-PMP
 * when the gateway answers that it does not speak PCP.
 *
 * @packageDocumentation
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { catchError, defer, ignoreElements, map, merge, of, share, Subject, switchMap, tap, throwError, type Observable } from 'rxjs';
import type { AddressFamily, MappingGrant, Nat, NatMappingRequest, PortMappingEntry } from '../../core/nat.js';
import { GatewayError, ProtocolError } from '../../errors.js';
import { exponentialBackoff, type UdpEndpoint } from '../../transport/udp.js';
import { mapAnswerError } from '../answer-check.js';
// The NAT-PMP backend's public entry points: the fallback, and NAT-PMP's external address request.
import { createPmpNat, pmp } from '../pmp/client.js';
import { decodePmpAnnouncement } from '../pmp/codec.js';
import {
  announcementListener,
  answersOpcode,
  equalBytes,
  GatewayEpoch,
  MappingRegistry,
  natPmpNotSpoken,
  resolveGateway,
  resolvePortControlOptions,
  type PortControlOptions,
  type ResolvedPortControlOptions,
} from '../pmp-pcp-shared.js';
import { NonceMemory } from './nonce-memory.js';
import {
  decodePcpAnnouncement,
  decodePcpResponse,
  encodePcpRequest,
  hexToNonce,
  nonceToHex,
  PCP_HEADER_BYTES,
  PCP_MAP_BYTES,
  PCP_NONCE_BYTES,
  pcpEpochLost,
  PcpOpcode,
  PcpProtocolNumber,
  PcpResultCode,
  pcpResultName,
  type PcpMapResponse,
  type PcpRequest,
  type PcpResponse,
} from './codec.js';

/**
 * Options of {@link pcp}: those of {@link pmp} (also used for the NAT-PMP fallback) plus PCP's own.
 *
 * @example
 * ```ts
 * pcp('127.0.0.1', { port: 15351, localAddress: '127.0.0.1', fallbackToPmp: false }).subscribe((nat) => console.log(nat.kind));
 * ```
 */
export interface PcpOptions extends PortControlOptions {
  /**
   * When the gateway answers UNSUPP_VERSION (a NAT-PMP-only gateway's 8-byte reply, or a PCP
   * server of another version), probe NAT-PMP on the same port and emit a `'pmp'` Nat.
   * Default true; false makes it a {@link GatewayError} (result 1, UNSUPP_VERSION).
   */
  readonly fallbackToPmp?: boolean;
  /**
   * Largest retransmission interval, in ms. RFC 6887 §8.1.1 starts at 3 s and caps at 1024 s;
   * rxnat starts at `initialRetransmitMs` (default 250) and caps here so a lost datagram costs
   * little during discovery. Default 2000. Each interval has ±10% jitter.
   */
  readonly maxRetransmitMs?: number;
  /** Source of mapping nonces (12 bytes). Default `crypto.randomBytes`. */
  readonly randomBytes?: (size: number) => Uint8Array;
  /**
   * Which default router to ask when no gateway address is given: `'ipv4'` (default) the IPv4
   * default route's, `'ipv6'` the IPv6 default route's (`transport.defaultIpv6Gateway`). A
   * given gateway's family is its own (a colon: IPv6).
   */
  readonly family?: AddressFamily;
}

/**
 * What a PCP {@link MappingGrant} carries in `token`: the mapping's nonce, reused to renew and delete.
 *
 * @example
 * ```ts
 * const nonce = (grant.token as PcpMappingToken).nonce; // 24 hex digits
 * ```
 */
export interface PcpMappingToken {
  /** The 96-bit mapping nonce, as 24 hex digits. */
  readonly nonce: string;
  /** The local address the mapping was made from, when the add was bound to one (IPv6): renewals and the delete are sent from it too. */
  readonly source?: string;
}

interface ResolvedPcpOptions extends ResolvedPortControlOptions {
  readonly maxRetransmitMs: number;
  readonly randomBytes: (size: number) => Uint8Array;
  /** What the NAT-PMP parts (fallback, external address) get. */
  readonly pmpOptions: PortControlOptions;
}

function resolveOptions(options: PcpOptions): ResolvedPcpOptions {
  const { fallbackToPmp: _fallback, maxRetransmitMs: _max, randomBytes: _random, family: _family, ...pmpOptions } = options;
  return {
    ...resolvePortControlOptions(pmpOptions),
    maxRetransmitMs: options.maxRetransmitMs ?? 2000,
    randomBytes: options.randomBytes ?? ((size) => new Uint8Array(cryptoRandomBytes(size))),
    pmpOptions,
  };
}

/**
 * Finds a PCP gateway: on subscribe, resolves the address (the one given, else the default
 * gateway), sends it a PCP ANNOUNCE, and emits one {@link Nat} of kind `'pcp'` named
 * `pcp(<ip>)`, then completes. A PCP version-2 answer proves PCP is spoken, unless it is a
 * refusal that means PCP will not map here: NOT_AUTHORIZED (2, also what a router with PCP
 * "implemented but not enabled" answers), UNSUPP_OPCODE (4), NETWORK_FAILURE (7) or
 * ADDRESS_MISMATCH (12) fail with a {@link GatewayError} carrying the code, the gateway and
 * the error lifetime as `retryAfterSeconds`. Other errors (NO_RESOURCES, MALFORMED_REQUEST, …)
 * still find the gateway. An UNSUPP_VERSION answer, including a NAT-PMP gateway's 8-byte
 * version-0 reply, falls back to {@link pmp} on the same port, so the Nat emitted is then of
 * kind `'pmp'` named `pmp(<ip>)` (and the NAT-PMP probe's refusals apply); with
 * `fallbackToPmp: false` it is a {@link GatewayError}.
 *
 * Mappings carry their nonce in `grant.token` ({@link PcpMappingToken}): renewals (`previous`)
 * and the delete reuse it, as PCP servers require. A delete without a token uses the nonce of
 * the last add this Nat sent for that protocol and internal port, answered or not (the server
 * may have applied an add whose answer was lost); that memory is bounded (1024 mappings, oldest
 * dropped) and forgotten once a delete with it completes. Error replies give `retryAfterSeconds`.
 *
 * A MAP success is a grant only when it can be one, else a {@link ProtocolError} carrying the
 * gateway: reason `lifetime` (lifetime 0), `external-port` (port 0) or `external-address` (an
 * unspecified, loopback, link-local, multicast or reserved assigned address).
 * `grant.externalIp` is dotted IPv4 for an IPv4-mapped address, IPv6 text otherwise.
 * `resets$` emits when an epoch shows the gateway lost state (RFC 6887 §8.5), in a reply or in
 * an announcement: while a mapping stream watches `resets$`, the Nat listens (option
 * `announcements`, default 0.0.0.0:5350, group 224.0.0.1) for the gateway's unsolicited
 * ANNOUNCE (RFC 6887 §14.1.3) and NAT-PMP address announcements (RFC 6886 §3.2.1), from the
 * gateway's address only; a NAT-PMP announcement of another external address is a reset too.
 * The mapping streams re-add at once.
 *
 * **IPv6** (RFC 6887 over IPv6; the Nat's `family` is `'ipv6'`): a gateway address with a colon,
 * or `options.family: 'ipv6'` without one (the IPv6 default router). A MAP then opens the
 * router's firewall for this host: the PCP client address (the mapping's internal address) is
 * the socket's source, so an add is sent from `request.internalAddress` when the request names
 * one, else from `localAddress`, else from what the kernel picks; for a link-local router
 * (`fe80::1%eth0`) without either, from the first global (else unique-local) address of that
 * interface (`transport.globalIpv6Addresses`), since a link-local source opens nothing the
 * internet can reach; an interface without one fails with a {@link ProtocolError} of reason
 * `no-global-address`. The suggested external address is `::` ("no preference"); nonces and
 * epochs work as for IPv4; renewals and the delete are sent from the add's source. There is no
 * NAT-PMP over IPv6: an UNSUPP_VERSION answer is a {@link GatewayError} whatever
 * `fallbackToPmp` says, and `externalIp()` answers the address the latest live mapping was
 * assigned (no request), failing with reason `external-address` while none is held. A request
 * of the other family fails with a {@link ProtocolError} of reason `family`.
 *
 * `externalIp()`: PCP has no request for the external address alone. The Nat asks NAT-PMP's
 * external address request on the same server (PCP servers usually speak NAT-PMP too,
 * RFC 6887 Appendix A) with the probe deadline; if that is refused, unreachable or silent, it
 * renews the most recent mapping it holds and returns the address its MAP response assigns;
 * holding none, it fails with the NAT-PMP attempt's error. An unusable address (0.0.0.0:
 * not connected, loopback, link-local, multicast) is a {@link ProtocolError} of reason
 * `external-address` either way (protocol `pmp` when NAT-PMP answered it, `pcp` when the MAP
 * response did).
 *
 * @example
 * ```ts
 * pcp('192.168.1.1').pipe(switchMap((nat) => nat.addMapping({ protocol: 'udp', internalPort: 30303,
 *   externalPort: 30303, description: 'p2p', lifetimeSeconds: 120 }))).subscribe((g) => console.log(g.externalIp, g.externalPort));
 * ```
 */
export function pcp(gateway?: string, options: PcpOptions = {}): Observable<Nat> {
  return defer(() => {
    const resolved = resolveOptions(options);
    return resolvePcpGateway(gateway, options.family, resolved).pipe(
      switchMap(({ ip, source }) => {
        const nat = new PcpNat(ip, resolved, source);
        return nat.probe().pipe(
          switchMap((outcome): Observable<Nat> => {
            if (outcome === 'pcp') return of(nat);
            if (options.fallbackToPmp === false || nat.family === 'ipv6') {
              return throwError(
                () =>
                  new GatewayError({
                    protocol: 'pcp',
                    resultCode: PcpResultCode.UNSUPP_VERSION,
                    resultName: pcpResultName(PcpResultCode.UNSUPP_VERSION),
                    gateway: ip,
                    message:
                      nat.family === 'ipv6'
                        ? 'the gateway does not speak PCP version 2 over IPv6 (and NAT-PMP is IPv4 only)'
                        : 'the gateway does not speak PCP version 2 (it answered like a NAT-PMP gateway) and fallbackToPmp is false',
                  }),
              );
            }
            return pmp(ip, resolved.pmpOptions);
          }),
        );
      }),
    );
  });
}

/**
 * The gateway address (the given one, else the default router of `family`) and, for a
 * link-local IPv6 router with no `localAddress` given, the global address to send from.
 */
function resolvePcpGateway(gateway: string | undefined, family: AddressFamily | undefined, options: ResolvedPcpOptions): Observable<{ ip: string; source: string | undefined }> {
  const { transport } = options;
  const lookup =
    gateway === undefined && family === 'ipv6'
      ? (): Observable<{ gateway: string; interface: string | null }> =>
          transport.defaultIpv6Gateway?.() ??
          throwError(() => new ProtocolError('pcp', 'no-default-route', 'this transport cannot look up the IPv6 default router; pass the gateway address'))
      : transport.defaultGateway;
  return resolveGateway(gateway, lookup).pipe(
    switchMap((ip) => {
      const zone = /%(.+)$/.exec(ip)?.[1];
      if (zone === undefined || options.localAddress !== undefined) return of({ ip, source: undefined });
      const list = transport.globalIpv6Addresses?.(zone) ?? of([]);
      return list.pipe(
        map((addresses) => {
          const source = addresses[0];
          if (source === undefined) {
            throw new ProtocolError('pcp', 'no-global-address', `interface ${zone} has no global or unique-local IPv6 address: a mapping from its link-local address cannot be reached from the internet`, ip);
          }
          return { ip, source };
        }),
      );
    }),
  );
}

/** What the ANNOUNCE probe learned. */
type ProbeOutcome = 'pcp' | 'unsupported-version';

/** How long a MAP reply stays matched to its request: the exact fields PCP echoes. */
interface MapExpectation {
  readonly nonce: Uint8Array;
  readonly protocol: number;
  readonly internalPort: number;
}

/**
 * Whether `bytes` answers a request: for MAP, a 60-byte MAP response with the request's nonce,
 * protocol and internal port; for ANNOUNCE, a 24-byte ANNOUNCE response. Both also take a bare
 * 24-byte error header for errors raised before the opcode data is read, and a NAT-PMP
 * gateway's 8-byte UNSUPPORTED_VERSION reply.
 */
/** A PCP answer's result code as the typed error (the error lifetime is the retry delay). */
function refusalOf(response: { readonly resultCode: number; readonly lifetimeSeconds: number }, gateway: string, message?: string): GatewayError {
  return new GatewayError({
    protocol: 'pcp',
    resultCode: response.resultCode,
    resultName: pcpResultName(response.resultCode),
    gateway,
    retryAfterSeconds: response.lifetimeSeconds,
    ...(message !== undefined ? { message } : {}),
  });
}

function matchPcpReply(opcode: number, expect: MapExpectation | undefined, bytes: Uint8Array): PcpResponse | undefined {
  const response = decodePcpResponse(bytes, { reserved: 'ignore' });
  if (response instanceof ProtocolError) return undefined;
  switch (response.op) {
    case 'pmp-unsupported-version':
      return answersOpcode(response.opcode, opcode) ? response : undefined;
    case 'header':
      return response.opcode === opcode && EARLY_ERRORS.has(response.resultCode) ? response : undefined;
    case 'announce':
      return opcode === PcpOpcode.ANNOUNCE && bytes.length === PCP_HEADER_BYTES ? response : undefined;
    case 'map':
      return opcode === PcpOpcode.MAP &&
        expect !== undefined &&
        bytes.length === PCP_MAP_BYTES &&
        equalBytes(response.nonce, expect.nonce) &&
        response.protocol === expect.protocol &&
        response.internalPort === expect.internalPort
        ? response
        : undefined;
  }
}

/**
 * The answers to the discovery probe (ANNOUNCE) that mean "PCP will not map here", so `pcp()`
 * fails instead of emitting a Nat (RFC 6887 §7.4):
 * - NOT_AUTHORIZED (2): the server refuses this client, or PCP is implemented but not enabled;
 *   a MAP gets the same answer.
 * - UNSUPP_OPCODE (4): ANNOUNCE is PCP's base opcode (§14.1), the one every client sends
 *   first; a server refusing it is no server to map with.
 * - NETWORK_FAILURE (7): the gateway has no working uplink (no external address yet); the
 *   NAT-PMP probe treats its NETWORK_FAILURE (3) the same way.
 * - ADDRESS_MISMATCH (12): the client address in the header is not the datagram's source,
 *   so there is another NAT between this host and the server (or `localAddress` is wrong);
 *   every MAP would get it too.
 *
 * UNSUPP_VERSION (1) falls back to NAT-PMP (or fails when `fallbackToPmp` is false). Every
 * other code still proves a PCP server that may map: MALFORMED_REQUEST (3), UNSUPP_OPTION (5),
 * MALFORMED_OPTION (6) are about the request's form (the probe sends no options; MAP is another
 * request), NO_RESOURCES (8) and the quota codes are short-lived, and unknown codes come from a
 * newer server.
 */
const PCP_PROBE_REFUSALS: ReadonlySet<number> = new Set<number>([
  PcpResultCode.NOT_AUTHORIZED,
  PcpResultCode.UNSUPP_OPCODE,
  PcpResultCode.NETWORK_FAILURE,
  PcpResultCode.ADDRESS_MISMATCH,
]);

/** Errors a server raises before it can copy the opcode data (so no nonce to match). */
const EARLY_ERRORS = new Set<number>([PcpResultCode.UNSUPP_VERSION, PcpResultCode.MALFORMED_REQUEST, PcpResultCode.UNSUPP_OPCODE]);

/** The PCP {@link Nat}. */
class PcpNat implements Nat {
  readonly kind = 'pcp' as const;
  readonly family: AddressFamily;
  readonly name: string;
  readonly gateway: string;
  readonly endpoint: string;
  readonly maxConcurrentRequests: number;
  /** Every MAP response assigns the external address: no NAT-PMP lookup ahead of the first add. */
  readonly grantsCarryExternalIp = true;
  readonly resets$: Observable<void>;
  private readonly resets = new Subject<void>();
  private readonly epoch: GatewayEpoch;
  private readonly registry: MappingRegistry;
  /** NAT-PMP on the same server, for `externalIp()` (IPv4 only: NAT-PMP has no IPv6). */
  private readonly pmpSide: Nat | undefined;
  /** Why NAT-PMP's external address request failed, once it has: later calls go straight to MAP. */
  private pmpExternalIpError: unknown;
  /** The nonce of the last add sent per (protocol, internal port), answered or not: what a delete without token uses. */
  private readonly sentNonces = new NonceMemory();
  /** The external address of the last MAP success or NAT-PMP announcement. */
  private externalIpSeen: string | undefined;

  constructor(
    gateway: string,
    private readonly options: ResolvedPcpOptions,
    /** Where requests are sent from when the request names no internal address (a link-local router's global source). */
    private readonly defaultSource: string | undefined = undefined,
  ) {
    this.gateway = gateway;
    this.family = gateway.includes(':') ? 'ipv6' : 'ipv4';
    this.endpoint = `${gateway}:${options.port}`;
    this.name = `pcp(${gateway})`;
    this.maxConcurrentRequests = options.maxConcurrentRequests;
    const now = (): number => options.scheduler.now();
    this.epoch = new GatewayEpoch(pcpEpochLost, now, () => this.resets.next());
    this.registry = new MappingRegistry(now);
    // This Nat listens for announcements itself (both forms): the NAT-PMP side must not.
    this.pmpSide = this.family === 'ipv4' ? createPmpNat(gateway, { ...options.pmpOptions, timeoutMs: options.probeTimeoutMs, announcements: false }) : undefined;
    // The external-address poll goes through the NAT-PMP side: the same server, the same epoch
    // (RFC 6887 Appendix A). A reset it sees is this gateway's reset.
    this.pmpSide?.resets$?.subscribe(() => this.resets.next());
    // The announcement listener lives while someone (a mapping stream) watches resets$, and is
    // shared by all of them; what it hears goes through the same epoch check as the replies.
    this.resets$ = merge(
      this.resets,
      announcementListener(gateway, options, 'pcp').pipe(
        tap((bytes) => this.announced(bytes)),
        ignoreElements(),
      ),
    ).pipe(share());
  }

  /**
   * An announcement from the gateway: a PCP ANNOUNCE (RFC 6887 §14.1.3), or the NAT-PMP public
   * address announcement a server speaking both sends (RFC 6886 §3.2.1; miniupnpd sends it on
   * start). A reset when its epoch shows lost state (checked against this Nat's epoch: a server
   * speaking both keeps one, RFC 6887 Appendix A), or when a NAT-PMP announcement names another
   * external address than the last MAP response assigned. Anything else is logged and ignored.
   */
  private announced(bytes: Uint8Array): void {
    const pmpForm = bytes[0] === 0 ? decodePmpAnnouncement(bytes) : undefined;
    const announcement = pmpForm ?? decodePcpAnnouncement(bytes);
    if (announcement instanceof ProtocolError) {
      this.options.logger.debug('rxnat:pcp', `ignored a datagram from ${this.gateway} on the announcement port: ${announcement.message}`);
      return;
    }
    const externalIp = pmpForm instanceof ProtocolError ? undefined : pmpForm?.externalIp;
    this.options.logger.debug('rxnat:pcp', `announcement from ${this.gateway}: epoch ${announcement.epochSeconds}${externalIp ? `, external address ${externalIp}` : ''}`);
    const previousIp = this.externalIpSeen;
    if (externalIp !== undefined) this.externalIpSeen = externalIp;
    if (this.epoch.observe(announcement.epochSeconds)) return;
    if (externalIp !== undefined && previousIp !== undefined && previousIp !== externalIp) {
      this.options.logger.debug('rxnat:pcp', `${this.gateway} announced a new external address ${externalIp} (was ${previousIp}): its mappings are gone`);
      this.resets.next();
    }
  }

  /**
   * ANNOUNCE: `'unsupported-version'` on UNSUPP_VERSION (either form), a {@link GatewayError} on
   * a refusal ({@link PCP_PROBE_REFUSALS}), `'pcp'` on any other PCP answer.
   */
  probe(): Observable<ProbeOutcome> {
    return defer(() =>
      this.exchange(PcpOpcode.ANNOUNCE, undefined, (local) => ({ op: 'announce', lifetimeSeconds: 0, clientIp: local.address }), this.options.probeTimeoutMs, this.defaultSource),
    ).pipe(
      map(({ response }): ProbeOutcome => {
        if (response.op === 'pmp-unsupported-version') return 'unsupported-version';
        if (response.resultCode === PcpResultCode.UNSUPP_VERSION) return 'unsupported-version';
        if (PCP_PROBE_REFUSALS.has(response.resultCode)) {
          throw refusalOf(response, this.gateway, 'the discovery probe (ANNOUNCE) was refused: PCP will not map here');
        }
        return 'pcp';
      }),
    );
  }

  addMapping(request: NatMappingRequest): Observable<MappingGrant> {
    return defer(() => {
      const family = request.family ?? 'ipv4';
      if (family !== this.family) {
        return throwError(() => new ProtocolError('pcp', 'family', `an ${family} mapping asked of an ${this.family} PCP gateway: ask the gateway of that family`, this.gateway));
      }
      const previous =
        request.previous !== undefined && request.previous.protocol === request.protocol && request.previous.internalPort === request.internalPort
          ? request.previous
          : undefined;
      // An add after one that got no valid answer reuses its nonce (RFC 6887 §11.2): the server
      // may hold the mapping under it, and answers NOT_AUTHORIZED to a MAP with another one.
      const nonce = tokenNonce(previous?.token) ?? this.sentNonces.get(request.protocol, request.internalPort) ?? this.newNonce();
      const lifetimeSeconds = request.lifetimeSeconds > 0 ? request.lifetimeSeconds : this.options.permanentLifetimeSeconds;
      const protocol = PcpProtocolNumber[request.protocol];
      const expect: MapExpectation = { nonce, protocol, internalPort: request.internalPort };
      // The PCP client address is the socket's source: an IPv6 mapping is made from the internal
      // address asked for (a renewal from the one it was made from).
      const source = request.internalAddress ?? tokenSource(previous?.token) ?? this.defaultSource;
      // Remembered before sending: if no valid answer comes, the server may still hold the
      // mapping under this nonce, and only this nonce (from this source) can delete it.
      this.sentNonces.remember(request.protocol, request.internalPort, nonce, source);
      return this.exchange(
        PcpOpcode.MAP,
        expect,
        (local) => ({
          op: 'map',
          lifetimeSeconds,
          clientIp: local.address,
          nonce,
          protocol,
          internalPort: request.internalPort,
          // Renewals ask for what they hold (RFC 6887 §11.2); never port 0.
          suggestedExternalPort: previous?.externalPort || request.externalPort || request.internalPort,
          suggestedExternalIp: previous?.externalIp ?? this.noPreference(),
        }),
        this.options.timeoutMs,
        source,
      ).pipe(
        map(({ response, local }) => {
          const answer = this.successOrThrow(response) as PcpMapResponse;
          // A success that cannot be a mapping (lifetime 0, port 0, no usable address) is not a grant.
          const invalid = mapAnswerError('pcp', this.gateway, answer);
          if (invalid !== undefined) throw invalid;
          // An IPv6 mapping stays with the address it was made from (the kernel may pick another
          // of the host's addresses next time: a temporary one, say).
          const from = source ?? (this.family === 'ipv6' ? local.address : undefined);
          const token: PcpMappingToken = from !== undefined ? { nonce: nonceToHex(nonce), source: from } : { nonce: nonceToHex(nonce) };
          const grant: MappingGrant = {
            protocol: request.protocol,
            internalPort: request.internalPort,
            externalPort: answer.externalPort,
            lifetimeSeconds: answer.lifetimeSeconds,
            externalIp: answer.externalIp,
            token,
          };
          this.registry.set(grant, request.description, local.address, lifetimeSeconds);
          this.externalIpSeen = answer.externalIp;
          return grant;
        }),
      );
    });
  }

  deleteMapping(grant: MappingGrant): Observable<void> {
    return defer(() => {
      // Without the original nonce the server refuses (NOT_AUTHORIZED). The token's nonce wins;
      // without one, that of the last add sent for this mapping (its answer may have been lost);
      // else a fresh one lets the server say so.
      const nonce = tokenNonce(grant.token) ?? this.sentNonces.get(grant.protocol, grant.internalPort) ?? this.newNonce();
      const source = tokenSource(grant.token) ?? this.sentNonces.source(grant.protocol, grant.internalPort) ?? this.defaultSource;
      const protocol = PcpProtocolNumber[grant.protocol];
      return this.exchange(
        PcpOpcode.MAP,
        { nonce, protocol, internalPort: grant.internalPort },
        (local) => ({
          op: 'map',
          lifetimeSeconds: 0,
          clientIp: local.address,
          nonce,
          protocol,
          internalPort: grant.internalPort,
          suggestedExternalPort: grant.externalPort,
          suggestedExternalIp: grant.externalIp ?? this.noPreference(),
        }),
        this.options.timeoutMs,
        source,
      ).pipe(
        map(({ response }) => {
          this.successOrThrow(response);
          this.registry.delete(grant.protocol, grant.internalPort);
          this.sentNonces.forget(grant.protocol, grant.internalPort, nonce);
        }),
        ignoreElements(),
      );
    });
  }

  externalIp(): Observable<string> {
    return defer(() => {
      const pmpSide = this.pmpSide;
      if (pmpSide === undefined) {
        // IPv6: no NAT-PMP, and no request for the address alone. The MAP responses name it.
        const held = this.registry.latest()?.grant.externalIp;
        if (held !== undefined) return of(held);
        return throwError(() => new ProtocolError('pcp', 'external-address', 'an IPv6 PCP gateway names the external address only in a MAP response, and no mapping is held yet', this.gateway));
      }
      const viaMap = (fallbackError: unknown): Observable<string> => {
        const held = this.registry.latest();
        if (held === undefined) return throwError(() => fallbackError);
        return this.addMapping({
          protocol: held.grant.protocol,
          internalPort: held.grant.internalPort,
          externalPort: held.grant.externalPort,
          description: held.description,
          lifetimeSeconds: held.requestedLifetimeSeconds,
          previous: held.grant,
        }).pipe(
          map((grant) => {
            if (grant.externalIp === undefined) throw new ProtocolError('pcp', 'external-address', 'MAP response carried no external address', this.gateway);
            return grant.externalIp;
          }),
        );
      };
      if (this.pmpExternalIpError !== undefined) return viaMap(this.pmpExternalIpError);
      return pmpSide.externalIp().pipe(
        catchError((error: unknown) => {
          if (!natPmpNotSpoken(error)) return throwError(() => error);
          this.pmpExternalIpError = error;
          return viaMap(error);
        }),
      );
    });
  }

  listMappings(): Observable<readonly PortMappingEntry[]> {
    return defer(() => of(this.registry.list()));
  }

  /** The suggested external address meaning "no preference" (RFC 6887 §11.1): `::` for IPv6, the IPv4-mapped `0.0.0.0` for IPv4. */
  private noPreference(): string {
    return this.family === 'ipv6' ? '::' : '0.0.0.0';
  }

  private newNonce(): Uint8Array {
    const nonce = this.options.randomBytes(PCP_NONCE_BYTES);
    if (nonce.length !== PCP_NONCE_BYTES) throw new RangeError(`randomBytes gave ${nonce.length} bytes, expected ${PCP_NONCE_BYTES}`);
    return nonce;
  }

  /** A non-success answer as a {@link GatewayError} with the error's lifetime as `retryAfterSeconds`. */
  private successOrThrow(response: PcpResponse): PcpResponse {
    if (response.op === 'pmp-unsupported-version') {
      throw new GatewayError({
        protocol: 'pcp',
        resultCode: PcpResultCode.UNSUPP_VERSION,
        resultName: pcpResultName(PcpResultCode.UNSUPP_VERSION),
        gateway: this.gateway,
        message: 'the gateway now answers as a NAT-PMP-only gateway',
      });
    }
    if (response.resultCode !== PcpResultCode.SUCCESS) {
      throw refusalOf(response, this.gateway);
    }
    return response;
  }

  /** One request/response; the request is built once the socket's local address is known. */
  private exchange(
    opcode: number,
    expect: MapExpectation | undefined,
    build: (local: UdpEndpoint) => PcpRequest,
    timeoutMs: number,
    source: string | undefined = undefined,
  ): Observable<{ response: PcpResponse; local: UdpEndpoint }> {
    return this.options.transport.udpExchange({
      protocol: 'pcp',
      host: this.gateway,
      port: this.options.port,
      message: (local) => encodePcpRequest(build(local)),
      accept: (bytes) => matchPcpReply(opcode, expect, bytes) !== undefined,
      timeoutMs,
      retransmit: exponentialBackoff({ initialMs: this.options.initialRetransmitMs, maxIntervalMs: this.options.maxRetransmitMs, jitter: 0.1 }),
      localAddress: source ?? this.options.localAddress,
      scheduler: this.options.scheduler,
      stats: this.options.stats,
      logger: this.options.logger,
    }).pipe(
      map((reply) => {
        const response = matchPcpReply(opcode, expect, reply.message);
        if (response === undefined) throw new ProtocolError('pcp', 'unmatched', 'accepted reply no longer matches', this.gateway);
        if (response.op !== 'pmp-unsupported-version') this.epoch.observe(response.epochSeconds);
        return { response, local: reply.local };
      }),
    );
  }
}

function tokenSource(token: unknown): string | undefined {
  const source = (token as Partial<PcpMappingToken> | null | undefined)?.source;
  return typeof source === 'string' ? source : undefined;
}

function tokenNonce(token: unknown): Uint8Array | undefined {
  const nonce = (token as Partial<PcpMappingToken> | null | undefined)?.nonce;
  return typeof nonce === 'string' ? hexToNonce(nonce) : undefined;
}

