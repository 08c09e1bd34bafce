/**
 * What the NAT-PMP (RFC 6886) and PCP (RFC 6887) backends share: their options and defaults,
 * gateway resolution, epoch tracking, the registry of mappings held, the recognition of the other
 * protocol's "unsupported version" answer (RFC 6887 Appendix A), and byte helpers. Both clients
 * import this module; neither imports the other's internals.
 *
 * @packageDocumentation
 */
import { catchError, EMPTY, filter, map, of, type Observable, type SchedulerLike } from 'rxjs';
import { classifyAddress } from '../core/address.js';
import { debugLogger, type Logger } from '../core/logger.js';
import type { MappingGrant, MappingProtocol, PortMappingEntry } from '../core/nat.js';
import { GatewayError, GatewayTimeoutError, GatewayUnreachableError, ProtocolError } from '../errors.js';
import type { DefaultGateway } from '../transport/default-gateway.js';
import { nodeTransport, type Transport } from '../transport/transport.js';
import type { UdpStats } from '../transport/udp.js';
import { decodePcpResponse, PCP_HEADER_BYTES, PcpResultCode } from './pcp/codec.js';
import { PMP_RESPONSE_BIT, PMP_SERVER_PORT, PmpResultCode, type EpochObservation } from './pmp/codec.js';

/**
 * Options of the NAT-PMP and PCP backends (`pmp()`'s `PmpOptions`; `pcp()` adds its own). Every
 * field is optional.
 *
 * @example
 * ```ts
 * const options: PortControlOptions = { port: 15351, localAddress: '127.0.0.1', probeTimeoutMs: 300 };
 * ```
 */
export interface PortControlOptions {
  /** The server's UDP port. Default 5351. */
  readonly port?: number;
  /** Deadline of the discovery probe, in ms. Default 1000 (go-ethereum's NAT-PMP cap). */
  readonly probeTimeoutMs?: number;
  /** Deadline of each later request (map, renew, delete, external address), in ms. Default 4000. */
  readonly timeoutMs?: number;
  /** First retransmission delay, in ms; each next one doubles (RFC 6886 §3.1). Default 250. */
  readonly initialRetransmitMs?: number;
  /** Most requests the core should send this gateway at once (`Nat.maxConcurrentRequests`). Default 1. */
  readonly maxConcurrentRequests?: number;
  /** Local address to bind each request's ephemeral socket to. Default: any. */
  readonly localAddress?: string;
  /**
   * Lease asked for when a request says 0 ("permanent"): NAT-PMP has no permanent lease and a
   * lifetime of 0 deletes. Default 7200 (RFC 6886 §3.3's recommendation).
   */
  readonly permanentLifetimeSeconds?: number;
  /**
   * Clock (`now()`) for epoch checks and lease accounting, and timers of the exchanges.
   * Default `transport.scheduler` (`asyncScheduler` for the real transport).
   */
  readonly scheduler?: SchedulerLike;
  /** Counters updated by every exchange this Nat makes (debugging). */
  readonly stats?: UdpStats;
  /** Where every request, retransmission, reply and drop is logged (`rxnat:pmp`, `rxnat:pcp`). Default `debugLogger` (`DEBUG=rxnat:*`). */
  readonly logger?: Logger;
  /**
   * The I/O: UDP exchanges and the default-route lookup (when no gateway address is given).
   * Default the real one (`node:dgram`, the system's routing table). Tests pass a fake one.
   */
  readonly transport?: Transport;
  /**
   * Where to listen for the gateway's unsolicited announcements (NAT-PMP's public address
   * announcement, RFC 6886 §3.2.1; PCP's ANNOUNCE, RFC 6887 §14.1.3), which a gateway sends
   * after a reboot or an external address change: so a mapping is re-added at once instead of
   * at the next reply that shows the epoch went back. `false`: do not listen.
   *
   * Default: `0.0.0.0:5350` with group `224.0.0.1` (`[::]:5350` and `ff02::1` for an IPv6
   * gateway), the port shared with other listeners (`SO_REUSEADDR`); but no listener when the
   * gateway is a loopback address (a simulator: nothing announces there). The listener is
   * bound only while at least one mapping stream uses the Nat (while `resets$` has a
   * subscriber), never for a bare probe, and shared by all of them. Only datagrams from the
   * gateway's address count. Where the port cannot be bound (`EADDRINUSE`, `EACCES`) or the
   * transport has no `udpListen`, it says so at debug level and the Nat learns of reboots from
   * its replies' epochs, as without this option.
   */
  readonly announcements?: AnnouncementOptions | false;
}

/**
 * Where a NAT-PMP/PCP Nat listens for its gateway's announcements (see
 * {@link PortControlOptions.announcements}). Every field is optional.
 *
 * @example
 * ```ts
 * const announcements: AnnouncementOptions = { address: '127.0.0.1', port: 15350, group: false }; // unicast on loopback only
 * ```
 */
export interface AnnouncementOptions {
  /** Local address to bind. Default `0.0.0.0` (`::` for an IPv6 gateway). */
  readonly address?: string;
  /** Local port. Default 5350 (RFC 6886 §3.2.1, RFC 6887 §14.1.3). */
  readonly port?: number;
  /** The multicast group to join, or `false` for unicast only. Default `224.0.0.1` (`ff02::1` for an IPv6 gateway). */
  readonly group?: string | false;
  /** The interface (by its address) to join the group on. Default the `localAddress` option, else the kernel's choice. */
  readonly interfaceAddress?: string;
}

/** The port NAT-PMP and PCP clients listen on for announcements (RFC 6886 §3.2.1, RFC 6887 §14.1.3). */
export const ANNOUNCEMENT_PORT = 5350;

/**
 * {@link PortControlOptions} with their defaults filled in.
 *
 * @example
 * ```ts
 * const resolved: ResolvedPortControlOptions = resolvePortControlOptions({});
 * resolved.timeoutMs; // 4000
 * ```
 */
export interface ResolvedPortControlOptions {
  readonly port: number;
  readonly probeTimeoutMs: number;
  readonly timeoutMs: number;
  readonly initialRetransmitMs: number;
  readonly maxConcurrentRequests: number;
  readonly localAddress: string | undefined;
  readonly permanentLifetimeSeconds: number;
  readonly scheduler: SchedulerLike;
  readonly stats: UdpStats | undefined;
  readonly logger: Logger;
  readonly transport: Transport;
  /** As given: {@link announcementListener} resolves the defaults, which depend on the gateway. */
  readonly announcements: AnnouncementOptions | false | undefined;
}

/**
 * Fills in the NAT-PMP/PCP defaults.
 *
 * @example
 * ```ts
 * resolvePortControlOptions({ port: 15351 }).scheduler; // asyncScheduler
 * ```
 */
export function resolvePortControlOptions(options: PortControlOptions): ResolvedPortControlOptions {
  const transport = options.transport ?? nodeTransport;
  return {
    port: options.port ?? PMP_SERVER_PORT,
    probeTimeoutMs: options.probeTimeoutMs ?? 1000,
    timeoutMs: options.timeoutMs ?? 4000,
    initialRetransmitMs: options.initialRetransmitMs ?? 250,
    maxConcurrentRequests: options.maxConcurrentRequests ?? 1,
    localAddress: options.localAddress,
    permanentLifetimeSeconds: options.permanentLifetimeSeconds ?? 7200,
    scheduler: options.scheduler ?? transport.scheduler,
    stats: options.stats,
    logger: options.logger ?? debugLogger,
    transport,
    announcements: options.announcements,
  };
}

/**
 * The datagrams a gateway's announcements arrive in, from the gateway's address only: the
 * transport's `udpListen` on the {@link PortControlOptions.announcements} endpoint, its defaults
 * filled in for `gateway`. Cold: each subscription binds its own socket (callers share it).
 * Never errors: a port that cannot be bound is logged at debug level and the stream completes
 * (the caller falls back to its replies' epochs); so does a transport without `udpListen`, or
 * `announcements: false`, or the default for a loopback gateway.
 *
 * @example
 * ```ts
 * announcementListener('192.168.1.1', resolved, 'pmp').subscribe((bytes) => console.log(decodePmpAnnouncement(bytes)));
 * ```
 */
export function announcementListener(gateway: string, options: ResolvedPortControlOptions, protocol: 'pmp' | 'pcp'): Observable<Uint8Array> {
  const given = options.announcements;
  const listen = options.transport.udpListen;
  const namespace = `rxnat:${protocol}`;
  if (given === false || listen === undefined) return EMPTY;
  // A simulator on loopback announces nothing unasked, and a test must not bind a real port.
  if (given === undefined && classifyAddress(gateway) === 'loopback') return EMPTY;
  // A transport whose exchanges are faked but whose listener is the real one (a test's
  // createTransport({ udpExchange })) never binds a real port or joins a group unasked.
  if (given === undefined && listen === nodeTransport.udpListen && options.transport.udpExchange !== nodeTransport.udpExchange) return EMPTY;
  const ipv6 = gateway.includes(':') && classifyAddress(gateway) !== 'invalid' && !/^::ffff:/i.test(gateway);
  const address = given?.address ?? (ipv6 ? '::' : '0.0.0.0');
  const port = given?.port ?? ANNOUNCEMENT_PORT;
  const group = given?.group === false ? undefined : (given?.group ?? (ipv6 ? 'ff02::1' : '224.0.0.1'));
  const interfaceAddress = given?.interfaceAddress ?? options.localAddress;
  return listen({ protocol, address, port, group, interfaceAddress, reuseAddr: true, stats: options.stats, logger: options.logger }).pipe(
    filter(({ remote }) => {
      if (sameIp(remote.address, gateway)) return true;
      options.logger.debug(namespace, `ignored an announcement from ${remote.address}:${remote.port}: not the gateway ${gateway}`);
      return false;
    }),
    map(({ message }) => message),
    catchError((error: unknown) => {
      options.logger.debug(namespace, `not listening for announcements (${(error as Error).message}); gateway reboots show in reply epochs only`);
      return EMPTY;
    }),
  );
}

function sameIp(a: string, b: string): boolean {
  const strip = (ip: string): string => ip.replace(/^::ffff:/i, '').toLowerCase();
  return strip(a) === strip(b);
}

/**
 * The gateway address to use: the one given, else the default route's router, looked up with
 * `lookup` (a backend passes its transport's `defaultGateway`).
 *
 * @example
 * ```ts
 * resolveGateway(undefined, nodeTransport.defaultGateway).subscribe((ip) => console.log('router at', ip));
 * ```
 */
export function resolveGateway(gateway: string | undefined, lookup: () => Observable<DefaultGateway> = nodeTransport.defaultGateway): Observable<string> {
  return gateway !== undefined ? of(gateway) : lookup().pipe(map((g) => g.gateway));
}

/**
 * Tracks one gateway's epoch (RFC 6886 §3.6 / RFC 6887 §8.5): remembers the last epoch and the
 * local time it was seen, and calls `onLost` when a new reading shows the gateway lost state.
 *
 * @example
 * ```ts
 * const epoch = new GatewayEpoch(pmpEpochLost, () => asyncScheduler.now(), () => resets.next());
 * epoch.observe(response.epochSeconds);
 * ```
 */
export class GatewayEpoch {
  private last: EpochObservation | undefined;
  constructor(
    private readonly lost: (previous: EpochObservation, current: EpochObservation) => boolean,
    private readonly now: () => number,
    private readonly onLost: () => void,
  ) {}

  /** Records a reply's epoch; true (and `onLost` called) when the gateway lost state. */
  observe(epochSeconds: number): boolean {
    const current: EpochObservation = { epochSeconds, localMs: this.now() };
    const previous = this.last;
    this.last = current;
    if (previous === undefined || !this.lost(previous, current)) return false;
    this.onLost();
    return true;
  }
}

/**
 * One mapping a NAT-PMP/PCP Nat holds, as {@link MappingRegistry} keeps it.
 *
 * @example
 * ```ts
 * const held: HeldMapping | undefined = registry.latest();
 * ```
 */
export interface HeldMapping {
  readonly grant: MappingGrant;
  readonly description: string;
  readonly internalClient: string;
  readonly grantedAtMs: number;
  /** The lifetime the caller asked for (what an internal renewal asks again). */
  readonly requestedLifetimeSeconds: number;
}

/**
 * The mappings a NAT-PMP or PCP Nat currently holds (those protocols cannot list a gateway's
 * table), keyed by protocol and internal port.
 *
 * @example
 * ```ts
 * const registry = new MappingRegistry(() => asyncScheduler.now());
 * registry.list(); // []
 * ```
 */
export class MappingRegistry {
  private readonly held = new Map<string, HeldMapping>();
  constructor(private readonly now: () => number) {}

  /** Records a grant. */
  set(grant: MappingGrant, description: string, internalClient: string, requestedLifetimeSeconds: number): void {
    this.held.set(registryKey(grant.protocol, grant.internalPort), {
      grant,
      description,
      internalClient,
      grantedAtMs: this.now(),
      requestedLifetimeSeconds,
    });
  }

  /** Forgets a mapping. */
  delete(protocol: MappingProtocol, internalPort: number): void {
    this.held.delete(registryKey(protocol, internalPort));
  }

  /** The most recently granted live mapping, if any. */
  latest(): HeldMapping | undefined {
    return this.live().sort((a, b) => b.grantedAtMs - a.grantedAtMs)[0];
  }

  /** The live mappings as table entries, remaining lifetime counted down. */
  list(): PortMappingEntry[] {
    const now = this.now();
    return this.live().map((h) => ({
      protocol: h.grant.protocol,
      externalPort: h.grant.externalPort,
      internalClient: h.internalClient,
      internalPort: h.grant.internalPort,
      description: h.description,
      lifetimeSeconds: h.grant.lifetimeSeconds === 0 ? 0 : Math.max(1, Math.ceil((expiry(h) - now) / 1000)),
      enabled: true,
    }));
  }

  private live(): HeldMapping[] {
    const now = this.now();
    for (const [key, h] of this.held) if (expiry(h) <= now) this.held.delete(key);
    return [...this.held.values()];
  }
}

const expiry = (h: HeldMapping): number => (h.grant.lifetimeSeconds === 0 ? Infinity : h.grantedAtMs + h.grant.lifetimeSeconds * 1000);
const registryKey = (protocol: MappingProtocol, internalPort: number): string => `${protocol}/${internalPort}`;

/**
 * Whether an opcode in a NAT-PMP-form reply answers a request's opcode: the request's opcode
 * with the response bit (RFC 6886 §3.5), or the bare response bit a server that rejects the
 * version answers with (opcode 128, UNSUPPORTED_VERSION).
 *
 * @example
 * ```ts
 * answersOpcode(129, 1); // true
 * answersOpcode(128, 1); // true (an UNSUPPORTED_VERSION reply)
 * ```
 */
export function answersOpcode(responseOpcode: number, requestOpcode: number): boolean {
  return responseOpcode === PMP_RESPONSE_BIT || responseOpcode === (PMP_RESPONSE_BIT | requestOpcode);
}

/**
 * A NAT-PMP client's view of a PCP-only server's answer (RFC 6887 Appendix A: a 24-byte PCP
 * header with UNSUPP_VERSION for the same opcode): its epoch, or `undefined` when `bytes` is not
 * such an answer to `expectedOpcode` (the NAT-PMP response opcode, request + 128).
 *
 * @example
 * ```ts
 * pcpOnlyAnswer(bytes, 128); // 3600 when a PCP server refused NAT-PMP's version
 * ```
 */
export function pcpOnlyAnswer(bytes: Uint8Array, expectedOpcode: number): number | undefined {
  if (bytes[0] !== 2 || bytes.length !== PCP_HEADER_BYTES) return undefined;
  const pcp = decodePcpResponse(bytes, { reserved: 'ignore' });
  if (pcp instanceof ProtocolError) return undefined;
  if ((pcp.op === 'header' || pcp.op === 'announce') && pcp.resultCode === PcpResultCode.UNSUPP_VERSION && (PMP_RESPONSE_BIT | pcp.opcode) === expectedOpcode) {
    return pcp.epochSeconds;
  }
  return undefined;
}

/**
 * Whether a NAT-PMP request's error means the server does not speak NAT-PMP (unreachable,
 * silent, or refusing the version, the opcode or the client): what a PCP client asking NAT-PMP
 * for the external address falls back on.
 *
 * @example
 * ```ts
 * natPmpNotSpoken(new GatewayTimeoutError('pmp', '192.168.1.1', 1000)); // true
 * ```
 */
export function natPmpNotSpoken(error: unknown): boolean {
  return (
    error instanceof GatewayUnreachableError ||
    error instanceof GatewayTimeoutError ||
    (error instanceof GatewayError &&
      (error.resultCode === PmpResultCode.UNSUPPORTED_VERSION || error.resultCode === PmpResultCode.NOT_AUTHORIZED || error.resultCode === PmpResultCode.UNSUPPORTED_OPCODE))
  );
}

/**
 * Byte-wise equality of two byte arrays (nonces).
 *
 * @example
 * ```ts
 * equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)); // true
 * ```
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
