/**
 * The gateway simulator's NAT-PMP (RFC 6886) and PCP (RFC 6887) server: one real UDP socket
 * speaking both protocols (dispatched on the version byte), backed by a {@link MappingTable},
 * with faults a test can switch at runtime.
 *
 * @packageDocumentation
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import {
  decodePmpRequest,
  encodePmpResponse,
  PMP_RESPONSE_BIT,
  PmpOpcode,
  PmpResultCode,
  type PmpMapRequest,
  type PmpRequest,
} from '../protocols/pmp/codec.js';
import {
  decodePcpRequest,
  encodePcpErrorResponse,
  encodePcpResponse,
  nonceToHex,
  PCP_RESPONSE_BIT,
  PCP_VERSION,
  PcpOpcode,
  pcpProtocolName,
  PcpResultCode,
  type PcpMapRequest,
} from '../protocols/pcp/codec.js';
import { Ipv6MappingTable } from './ipv6-table.js';
import type { MappingTable } from './table.js';
import { ProtocolError } from '../errors.js';

/**
 * Which request a datagram was, for {@link PmpPcpServerCounters}.
 *
 * @example
 * ```ts
 * const kind: PmpPcpRequestKind = 'pcp.map'; server.counters.byKind[kind];
 * ```
 */
export type PmpPcpRequestKind =
  | 'pmp.externalAddress'
  | 'pmp.mapUdp'
  | 'pmp.mapTcp'
  | 'pmp.other'
  | 'pcp.announce'
  | 'pcp.map'
  | 'pcp.other'
  | 'other';

/**
 * Refuse requests with a result code instead of processing them.
 *
 * @example
 * ```ts
 * server.faults.refuse = { resultCode: 8, lifetimeSeconds: 60, protocol: 'pcp' }; // NO_RESOURCES, always
 * ```
 */
export interface RefuseFault {
  /** The result code to answer with (NAT-PMP 1-5 or PCP 1-13; any byte is sent as given). */
  readonly resultCode: number;
  /** How many requests to refuse; decremented on each; `undefined` refuses all. */
  count?: number;
  /** The PCP error lifetime (the client's `retryAfterSeconds`). Default: the server's `errorLifetimeSeconds`. */
  readonly lifetimeSeconds?: number;
  /** Refuse only this protocol's requests. Default both. */
  readonly protocol?: 'pmp' | 'pcp';
  /**
   * Which requests are refused: `'all'` (the default), or `'mappings'` only: NAT-PMP map
   * requests (deletes too) and PCP MAP, while the discovery probes (NAT-PMP's external address
   * request, PCP ANNOUNCE) are answered as usual and do not use up `count`. A gateway that
   * speaks the protocol but has mappings switched off for this client.
   *
   * @example
   * ```ts
   * server.faults.refuse = { resultCode: 2, requests: 'mappings' }; // probes succeed, every mapping NOT_AUTHORIZED
   * ```
   */
  readonly requests?: 'all' | 'mappings';
}

/**
 * Process requests (the table changes) but lose the replies.
 *
 * @example
 * ```ts
 * server.faults.drop = { count: 2 }; // lose the next two replies
 * ```
 */
export interface DropFault {
  /** How many replies to drop; decremented on each. */
  count?: number;
  /** Chance in [0, 1] that a reply is dropped (when `count` is not given). */
  readonly probability?: number;
}

/**
 * The faults of a running server. Assign fields at any time: `server.faults.drop = { count: 2 }`.
 *
 * @example
 * ```ts
 * server.faults.refuse = { resultCode: 2, count: 1 };  // next request: NOT_AUTHORIZED
 * server.faults.silent = true;                          // ignore everything
 * ```
 */
export interface PmpPcpFaults {
  /** Refuse requests with a result code. */
  refuse: RefuseFault | undefined;
  /** Drop replies: `{}` all, `{ count: n }` the next n, `{ probability: p }` at random. */
  drop: DropFault | undefined;
  /** Delay every reply, in ms. */
  delayMs: number;
  /** Ignore every datagram: no processing, no reply. */
  silent: boolean;
  /**
   * Rewrite each reply: return the datagrams to send instead (several, none, or altered bytes).
   * `undefined` sends the reply unchanged.
   */
  tamper: ((reply: Uint8Array, request: PmpPcpServerRequest) => readonly Uint8Array[] | undefined) | undefined;
  /**
   * Every reply carries an epoch lower than the reply before it, as if the gateway rebooted
   * between any two replies (RFC 6886 §3.6, RFC 6887 §8.5), while the table (and every mapping
   * in it) is kept: a gateway with a broken clock. The epoch counts down from 2^32 − 16 by 16 s
   * per reply, whatever the table's epoch, so each reply after the first is "backwards" for any
   * client's check. Switching it off returns to the table's epoch (one more apparent reboot).
   * Default `false`.
   *
   * @example
   * ```ts
   * server.faults.epochFalls = true; // each reply now looks like a reboot
   * ```
   */
  epochFalls?: boolean;
}

/**
 * One datagram the server received, as {@link PmpPcpServer.log} keeps it.
 *
 * @example
 * ```ts
 * const { from } = server.log.at(-1)!; await server.send(forged, from);
 * ```
 */
export interface PmpPcpServerRequest {
  readonly from: { readonly address: string; readonly port: number };
  readonly kind: PmpPcpRequestKind;
  readonly bytes: Uint8Array;
  /** `Date.now()` on arrival. */
  readonly atMs: number;
}

/**
 * What the server counted.
 *
 * @example
 * ```ts
 * assert.equal(server.counters.byKind['pmp.mapTcp'], 3);
 * ```
 */
export interface PmpPcpServerCounters {
  /** Datagrams received. */
  total: number;
  /** Requests by kind (also counted when refused, dropped, or silenced). */
  readonly byKind: Record<PmpPcpRequestKind, number>;
  /** Datagrams that could not be parsed (answered with an error where the RFC says so). */
  malformed: number;
  /** Replies sent. */
  replies: number;
  /** Replies lost to the `drop` fault. */
  dropped: number;
  /** Datagrams ignored (silence, responses sent to the server, runts). */
  ignored: number;
  /** Socket errors and handler failures survived. */
  errors: number;
  /** Unsolicited announcements sent (each datagram to each target). */
  announcements: number;
}

/**
 * Options of {@link startPmpPcpServer}.
 *
 * @example
 * ```ts
 * await startPmpPcpServer(table, { port: 0, protocols: { pcp: false }, pcpMaxLifetimeSeconds: 3600 });
 * ```
 */
export interface PmpPcpServerOptions {
  /** Address to bind. Default `127.0.0.1` (keep simulators on loopback). */
  readonly address?: string;
  /** Port to bind; 0 picks an ephemeral port (see {@link PmpPcpServer.port}). Default 0. */
  readonly port?: number;
  /**
   * Protocols served. Default both. NAT-PMP only answers PCP requests with NAT-PMP's 8-byte
   * UNSUPPORTED_VERSION; PCP only answers NAT-PMP requests with PCP's UNSUPP_VERSION header.
   */
  readonly protocols?: { readonly pmp?: boolean; readonly pcp?: boolean };
  /** Shortest PCP lifetime granted (longer requests are clamped down to the max, shorter up to this). Default 120. */
  readonly pcpMinLifetimeSeconds?: number;
  /** Longest PCP lifetime granted. Default 86400. */
  readonly pcpMaxLifetimeSeconds?: number;
  /** Lifetime of PCP error replies (how long the client should wait). Default 30. */
  readonly errorLifetimeSeconds?: number;
  /** Initial faults. */
  readonly faults?: Partial<PmpPcpFaults>;
  /** How many requests {@link PmpPcpServer.log} keeps. Default 256. */
  readonly logSize?: number;
  /** Randomness for `drop.probability`. Default `Math.random`. */
  readonly random?: () => number;
  /** The IPv6 firewall PCP over IPv6 opens (to share one, or give it a fake clock). Default: a new {@link Ipv6MappingTable}. */
  readonly ipv6Table?: Ipv6MappingTable;
  /**
   * The address an IPv6 MAP response assigns to a client on loopback (`::1`), standing for the
   * global address a real host would have (a loopback address is no external address). Clients
   * with another IPv6 source are assigned their own address, as by a router without NAT66.
   * Default `2001:db8::10`.
   */
  readonly ipv6HostAddress?: string;
  /**
   * Where to send the gateway's unsolicited announcements after each reboot of the table and
   * each change of its external address: a NAT-PMP public address announcement (RFC 6886
   * §3.2.1) and, after a reboot, a PCP ANNOUNCE (RFC 6887 §14.1.3), each once, from the
   * server's socket, for the protocols served. A real gateway multicasts them to
   * 224.0.0.1:5350; the simulator sends unicast to these loopback endpoints only (anything
   * else is a `RangeError` at start). Default none.
   */
  readonly announceTo?: readonly { readonly address: string; readonly port: number }[];
}

/**
 * A running NAT-PMP + PCP server.
 *
 * @example
 * ```ts
 * const server = await startPmpPcpServer(new MappingTable());
 * console.log(server.address, server.port, server.counters.byKind['pcp.map']);
 * await server.close();
 * ```
 */
export interface PmpPcpServer {
  /** The bound address. */
  readonly address: string;
  /** The bound port (the ephemeral one when started with port 0). */
  readonly port: number;
  /** The table behind it. */
  readonly table: MappingTable;
  /** The IPv6 firewall behind PCP over IPv6 (lost, like `table`, when `table` reboots). */
  readonly ipv6Table: Ipv6MappingTable;
  /** Faults, changeable at any time. */
  readonly faults: PmpPcpFaults;
  /** Counters since start or {@link PmpPcpServer.resetCounters}. */
  readonly counters: PmpPcpServerCounters;
  /** The latest requests, oldest first. */
  readonly log: readonly PmpPcpServerRequest[];
  /** Zeroes the counters and empties the log. */
  resetCounters(): void;
  /** Sends raw bytes from the server's socket (tests inject forged replies with it). */
  send(bytes: Uint8Array, to: { readonly address: string; readonly port: number }): Promise<void>;
  /**
   * Sends the announcements of `event` now (a reboot: NAT-PMP's and PCP's; an address change:
   * NAT-PMP's), with the current epoch and external address, to `to` (default the
   * `announceTo` endpoints), for the protocols served; what the server does by itself on each
   * reboot and address change. Resolves once sent. Nothing while the `silent` fault is on.
   */
  announce(event?: 'reboot' | 'external-ip', to?: readonly { readonly address: string; readonly port: number }[]): Promise<void>;
  /** Stops serving; pending delayed replies are discarded. */
  close(): Promise<void>;
}

/** Where the `epochFalls` fault starts counting down, and by how much per reply (beyond both RFCs' tolerances). */
const FALLING_EPOCH_STEP = 16;
const FALLING_EPOCH_TOP = 0x1_0000_0000 - FALLING_EPOCH_STEP;

const KINDS: readonly PmpPcpRequestKind[] = ['pmp.externalAddress', 'pmp.mapUdp', 'pmp.mapTcp', 'pmp.other', 'pcp.announce', 'pcp.map', 'pcp.other', 'other'];

function zeroCounters(): PmpPcpServerCounters {
  return {
    total: 0,
    byKind: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<PmpPcpRequestKind, number>,
    malformed: 0,
    replies: 0,
    dropped: 0,
    ignored: 0,
    errors: 0,
    announcements: 0,
  };
}

/**
 * Starts the simulator's NAT-PMP + PCP server on a real UDP socket. It never throws on a
 * datagram: anything malformed is answered as the RFCs say or ignored, and counted.
 *
 * Behaviour (miniupnpd-like): NAT-PMP lifetime 0 deletes (internal port 0: every mapping of
 * the client for that protocol); NAT-PMP lifetimes are not clamped; PCP lifetimes are clamped
 * to [`pcpMinLifetimeSeconds`, `pcpMaxLifetimeSeconds`]; a PCP renew or delete of a mapping
 * created with another nonce is NOT_AUTHORIZED; the PCP client address must be the datagram's
 * source (else ADDRESS_MISMATCH); mandatory PCP options are UNSUPP_OPTION (none supported);
 * PEER is UNSUPP_OPCODE. Epoch, external address and reboots come from the table; with
 * `announceTo`, each reboot and address change is announced there (unicast, loopback only).
 *
 * Over IPv6 (bind `::1`), as miniupnpd with IPv6: a PCP MAP from an IPv6 client opens its
 * firewall instead of forwarding a port: an entry of {@link PmpPcpServer.ipv6Table} for the
 * client's address and internal port, answered with that port as external port and the
 * client's own address as external address (`ipv6HostAddress` for `::1`); the suggested
 * external port and address are ignored. Nonces, lifetimes, deletes, faults and epochs work as
 * for IPv4. NAT-PMP requests from IPv6 clients get no answer (NAT-PMP is IPv4 only).
 *
 * @example
 * ```ts
 * const table = new MappingTable({ externalIp: '203.0.113.9' });
 * const server = await startPmpPcpServer(table, { address: '127.0.0.1', port: 0 });
 * const nat = await firstValueFrom(pmp('127.0.0.1', { port: server.port, localAddress: '127.0.0.1' }));
 * table.reboot(); // the next reply carries epoch 0: nat.resets$ emits
 * await server.close();
 * ```
 */
export async function startPmpPcpServer(table: MappingTable, options: PmpPcpServerOptions = {}): Promise<PmpPcpServer> {
  const address = options.address ?? '127.0.0.1';
  for (const target of options.announceTo ?? []) {
    if (!/^127\./.test(target.address) && target.address !== '::1') {
      throw new RangeError(`the simulator announces to loopback endpoints only, not to ${JSON.stringify(target.address)}`);
    }
  }
  const socket = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    socket.once('error', onError);
    socket.bind({ port: options.port ?? 0, address, exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
  return new Server(socket, table, options);
}

class Server implements PmpPcpServer {
  readonly address: string;
  readonly port: number;
  readonly faults: PmpPcpFaults;
  counters: PmpPcpServerCounters = zeroCounters();
  log: PmpPcpServerRequest[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private closed = false;
  private readonly servePmp: boolean;
  private readonly servePcp: boolean;
  private readonly minLifetime: number;
  private readonly maxLifetime: number;
  private readonly errorLifetime: number;
  private readonly logSize: number;
  private readonly random: () => number;
  /** The last epoch sent under the `epochFalls` fault. */
  private fallingEpoch = FALLING_EPOCH_TOP + FALLING_EPOCH_STEP;
  readonly ipv6Table: Ipv6MappingTable;
  private readonly ipv6HostAddress: string;
  /** The table's epoch at the last IPv6 request: lower now means the table rebooted, and the firewall with it. */
  private ipv6Epoch = 0;
  private readonly announceTo: readonly { readonly address: string; readonly port: number }[];
  private readonly unwatch: () => void;

  constructor(
    private readonly socket: Socket,
    readonly table: MappingTable,
    options: PmpPcpServerOptions,
  ) {
    const bound = socket.address();
    this.address = bound.address;
    this.port = bound.port;
    this.servePmp = options.protocols?.pmp ?? true;
    this.servePcp = options.protocols?.pcp ?? true;
    if (!this.servePmp && !this.servePcp) throw new RangeError('serve at least one of NAT-PMP and PCP');
    this.minLifetime = options.pcpMinLifetimeSeconds ?? 120;
    this.maxLifetime = options.pcpMaxLifetimeSeconds ?? 86400;
    this.errorLifetime = options.errorLifetimeSeconds ?? 30;
    this.logSize = options.logSize ?? 256;
    this.random = options.random ?? Math.random;
    this.ipv6Table = options.ipv6Table ?? new Ipv6MappingTable();
    this.ipv6HostAddress = options.ipv6HostAddress ?? '2001:db8::10';
    this.faults = { refuse: undefined, drop: undefined, delayMs: 0, silent: false, tamper: undefined, epochFalls: false, ...options.faults };
    this.announceTo = [...(options.announceTo ?? [])];
    this.unwatch = this.announceTo.length === 0 ? () => undefined : table.watch((event) => void this.announce(event).catch(() => this.counters.errors++));
    socket.on('error', () => {
      this.counters.errors++;
    });
    socket.on('message', (data: Buffer, rinfo: RemoteInfo) => {
      try {
        this.receive(new Uint8Array(data), rinfo);
      } catch {
        this.counters.errors++;
      }
    });
  }

  resetCounters(): void {
    this.counters = zeroCounters();
    this.log = [];
  }

  send(bytes: Uint8Array, to: { readonly address: string; readonly port: number }): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(bytes, to.port, to.address, (error) => (error ? reject(error) : resolve())));
  }

  async announce(event: 'reboot' | 'external-ip' = 'reboot', to: readonly { readonly address: string; readonly port: number }[] = this.announceTo): Promise<void> {
    if (this.closed || this.faults.silent) return;
    const datagrams: Uint8Array[] = [];
    const epochSeconds = this.epoch();
    if (this.servePmp) {
      datagrams.push(encodePmpResponse({ op: 'external-address', resultCode: PmpResultCode.SUCCESS, epochSeconds, externalIp: this.table.externalIp }));
    }
    if (this.servePcp && event === 'reboot') {
      datagrams.push(encodePcpResponse({ op: 'announce', opcode: PcpOpcode.ANNOUNCE, resultCode: PcpResultCode.SUCCESS, lifetimeSeconds: 0, epochSeconds, options: [] }));
    }
    for (const target of to) {
      for (const datagram of datagrams) {
        await this.send(datagram, target);
        this.counters.announcements++;
      }
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.unwatch();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  private receive(bytes: Uint8Array, rinfo: RemoteInfo): void {
    this.counters.total++;
    const kind = classify(bytes);
    this.counters.byKind[kind]++;
    const request: PmpPcpServerRequest = { from: { address: rinfo.address, port: rinfo.port }, kind, bytes: bytes.slice(), atMs: Date.now() };
    this.log.push(request);
    if (this.log.length > this.logSize) this.log.splice(0, this.log.length - this.logSize);
    if (this.faults.silent || bytes.length < 2) {
      this.counters.ignored++;
      return;
    }
    const reply = this.answer(bytes, request.from);
    if (reply === undefined) return;
    this.deliver(reply, request);
  }

  /** The reply to a datagram, or `undefined` when the RFCs say to stay silent. */
  private answer(bytes: Uint8Array, from: { address: string; port: number }): Uint8Array | undefined {
    const version = bytes[0];
    if (version === 0 && isIpv6Client(from.address)) {
      this.counters.ignored++;
      return undefined;
    }
    if (version === 0 && this.servePmp) return this.answerPmp(bytes, from.address);
    if (version === PCP_VERSION && this.servePcp) return this.answerPcp(bytes, from.address);
    // A version this server does not speak.
    if (((bytes[1] ?? 0) & PMP_RESPONSE_BIT) !== 0) {
      this.counters.ignored++;
      return undefined;
    }
    if (this.servePcp) {
      // PCP servers answer unknown versions with a bare UNSUPP_VERSION header (RFC 6887 §9).
      return encodePcpResponse({
        op: 'header',
        opcode: (bytes[1] ?? 0) & 0x7f,
        resultCode: PcpResultCode.UNSUPP_VERSION,
        lifetimeSeconds: this.errorLifetime,
        epochSeconds: this.epoch(),
      });
    }
    // NAT-PMP servers answer with the 8-byte form, opcode 128 (RFC 6886 §3.5, erratum 3618).
    return encodePmpResponse({ op: 'short', opcode: PMP_RESPONSE_BIT, resultCode: PmpResultCode.UNSUPPORTED_VERSION, epochSeconds: this.epoch() });
  }

  private answerPmp(bytes: Uint8Array, client: string): Uint8Array | undefined {
    const request = decodePmpRequest(bytes, { reserved: 'ignore' });
    if (request instanceof ProtocolError) {
      if (request.reason === 'response') {
        this.counters.ignored++;
        return undefined;
      }
      this.counters.malformed++;
      if (request.reason === 'opcode') {
        return encodePmpResponse({ op: 'short', opcode: PMP_RESPONSE_BIT | (bytes[1] ?? 0), resultCode: PmpResultCode.UNSUPPORTED_OPCODE, epochSeconds: this.epoch() });
      }
      return undefined; // wrong length: miniupnpd ignores it too
    }
    const refusal = this.takeRefusal('pmp', request.op !== 'external-address');
    if (refusal !== undefined) return this.pmpReply(request, refusal.resultCode);
    if (request.op === 'external-address') {
      return encodePmpResponse({ op: 'external-address', resultCode: PmpResultCode.SUCCESS, epochSeconds: this.epoch(), externalIp: this.table.externalIp });
    }
    if (request.lifetimeSeconds === 0) {
      this.pmpDelete(request, client);
      return this.pmpReply(request, PmpResultCode.SUCCESS);
    }
    const added = this.table.add({
      protocol: request.protocol,
      internalClient: client,
      internalPort: request.internalPort,
      externalPort: request.suggestedExternalPort,
      description: 'NAT-PMP',
      lifetimeSeconds: request.lifetimeSeconds,
      via: 'pmp',
    });
    if (!added.ok) return this.pmpReply(request, PmpResultCode.OUT_OF_RESOURCES);
    return encodePmpResponse({
      op: 'map',
      protocol: request.protocol,
      resultCode: PmpResultCode.SUCCESS,
      epochSeconds: this.epoch(),
      internalPort: request.internalPort,
      externalPort: added.mapping.externalPort,
      lifetimeSeconds: added.mapping.lifetimeSeconds,
    });
  }

  private pmpDelete(request: PmpMapRequest, client: string): void {
    const doomed = this.table
      .list()
      .filter((m) => m.protocol === request.protocol && m.internalClient === client && (request.internalPort === 0 || m.internalPort === request.internalPort));
    for (const m of doomed) this.table.delete(m.protocol, m.externalPort);
  }

  /** A NAT-PMP reply carrying only a result code (errors, deletes). */
  private pmpReply(request: PmpRequest, resultCode: number): Uint8Array {
    if (request.op === 'external-address') {
      return encodePmpResponse({ op: 'external-address', resultCode, epochSeconds: this.epoch(), externalIp: '0.0.0.0' });
    }
    return encodePmpResponse({ op: 'map', protocol: request.protocol, resultCode, epochSeconds: this.epoch(), internalPort: request.internalPort, externalPort: 0, lifetimeSeconds: 0 });
  }

  private answerPcp(bytes: Uint8Array, client: string): Uint8Array | undefined {
    if (((bytes[1] ?? 0) & PCP_RESPONSE_BIT) !== 0) {
      this.counters.ignored++;
      return undefined;
    }
    const request = decodePcpRequest(bytes, { reserved: 'ignore' });
    if (request instanceof ProtocolError) {
      this.counters.malformed++;
      const resultCode =
        request.reason === 'opcode' ? PcpResultCode.UNSUPP_OPCODE : request.reason === 'option' ? PcpResultCode.MALFORMED_OPTION : PcpResultCode.MALFORMED_REQUEST;
      return this.pcpError(bytes, resultCode);
    }
    const refusal = this.takeRefusal('pcp', request.op === 'map');
    if (refusal !== undefined) return this.pcpError(bytes, refusal.resultCode, refusal.lifetimeSeconds);
    if (stripMapped(request.clientIp) !== stripMapped(client)) return this.pcpError(bytes, PcpResultCode.ADDRESS_MISMATCH);
    if ((request.options ?? []).some((o) => o.code < 128)) return this.pcpError(bytes, PcpResultCode.UNSUPP_OPTION);
    if (request.op === 'announce') {
      return encodePcpResponse({ op: 'announce', opcode: PcpOpcode.ANNOUNCE, resultCode: PcpResultCode.SUCCESS, lifetimeSeconds: 0, epochSeconds: this.epoch(), options: [] });
    }
    return isIpv6Client(client) ? this.pcpMap6(bytes, request, client) : this.pcpMap(bytes, request, client);
  }

  private pcpMap(bytes: Uint8Array, request: PcpMapRequest, client: string): Uint8Array {
    const protocol = pcpProtocolName(request.protocol);
    if (protocol === undefined) return this.pcpError(bytes, PcpResultCode.UNSUPP_PROTOCOL);
    if (request.internalPort === 0) return this.pcpError(bytes, PcpResultCode.MALFORMED_REQUEST);
    const nonce = nonceToHex(request.nonce);
    const existing = this.table.findByInternal(protocol, client, request.internalPort);
    if (existing?.nonce !== undefined && existing.nonce !== nonce) return this.pcpError(bytes, PcpResultCode.NOT_AUTHORIZED);
    const reply = (externalPort: number, lifetimeSeconds: number): Uint8Array =>
      encodePcpResponse({
        op: 'map',
        opcode: PcpOpcode.MAP,
        resultCode: PcpResultCode.SUCCESS,
        lifetimeSeconds,
        epochSeconds: this.epoch(),
        nonce: request.nonce,
        protocol: request.protocol,
        internalPort: request.internalPort,
        externalPort,
        externalIp: this.table.externalIp,
        options: [],
      });
    if (request.lifetimeSeconds === 0) {
      if (existing) this.table.delete(existing.protocol, existing.externalPort);
      return reply(existing?.externalPort ?? request.suggestedExternalPort, 0);
    }
    const lifetimeSeconds = Math.min(this.maxLifetime, Math.max(this.minLifetime, request.lifetimeSeconds));
    const added = this.table.add({
      protocol,
      internalClient: client,
      internalPort: request.internalPort,
      externalPort: request.suggestedExternalPort,
      description: 'PCP',
      lifetimeSeconds,
      via: 'pcp',
      nonce,
    });
    if (!added.ok) return this.pcpError(bytes, PcpResultCode.NO_RESOURCES);
    return reply(added.mapping.externalPort, added.mapping.lifetimeSeconds);
  }

  /** A MAP from an IPv6 client: a firewall opening for its own address, no translation. */
  private pcpMap6(bytes: Uint8Array, request: PcpMapRequest, client: string): Uint8Array {
    const protocol = pcpProtocolName(request.protocol);
    if (protocol === undefined) return this.pcpError(bytes, PcpResultCode.UNSUPP_PROTOCOL);
    if (request.internalPort === 0) return this.pcpError(bytes, PcpResultCode.MALFORMED_REQUEST);
    const epoch = this.table.epochSeconds();
    if (epoch < this.ipv6Epoch) this.ipv6Table.clear();
    this.ipv6Epoch = epoch;
    const nonce = nonceToHex(request.nonce);
    const existing = this.ipv6Table.get(protocol, client, request.internalPort);
    if (existing !== undefined && existing.nonce !== nonce) return this.pcpError(bytes, PcpResultCode.NOT_AUTHORIZED);
    const externalIp = client === '::1' ? this.ipv6HostAddress : client.replace(/%.*$/, '');
    const reply = (lifetimeSeconds: number): Uint8Array =>
      encodePcpResponse({
        op: 'map',
        opcode: PcpOpcode.MAP,
        resultCode: PcpResultCode.SUCCESS,
        lifetimeSeconds,
        epochSeconds: this.epoch(),
        nonce: request.nonce,
        protocol: request.protocol,
        internalPort: request.internalPort,
        externalPort: request.internalPort,
        externalIp,
        options: [],
      });
    if (request.lifetimeSeconds === 0) {
      if (existing !== undefined) this.ipv6Table.delete(protocol, client, request.internalPort);
      return reply(0);
    }
    const lifetimeSeconds = Math.min(this.maxLifetime, Math.max(this.minLifetime, request.lifetimeSeconds));
    const added = this.ipv6Table.add({ protocol, internalClient: client, internalPort: request.internalPort, externalIp, lifetimeSeconds, nonce });
    if (added === undefined) return this.pcpError(bytes, PcpResultCode.NO_RESOURCES);
    return reply(lifetimeSeconds);
  }

  private pcpError(request: Uint8Array, resultCode: number, lifetimeSeconds?: number): Uint8Array {
    return encodePcpErrorResponse(request, { resultCode, lifetimeSeconds: lifetimeSeconds ?? this.errorLifetime, epochSeconds: this.epoch() });
  }

  /** Consumes one refusal if the `refuse` fault applies to this protocol and this kind of request (`mapping`: a map request, not a probe). */
  private takeRefusal(protocol: 'pmp' | 'pcp', mapping: boolean): { resultCode: number; lifetimeSeconds: number | undefined } | undefined {
    const refuse = this.faults.refuse;
    if (refuse === undefined || (refuse.protocol !== undefined && refuse.protocol !== protocol)) return undefined;
    if (refuse.requests === 'mappings' && !mapping) return undefined;
    if (refuse.count !== undefined) {
      if (refuse.count <= 0) return undefined;
      refuse.count--;
    }
    return { resultCode: refuse.resultCode, lifetimeSeconds: refuse.lifetimeSeconds };
  }

  private shouldDrop(): boolean {
    const drop = this.faults.drop;
    if (drop === undefined) return false;
    if (drop.count !== undefined) {
      if (drop.count <= 0) return false;
      drop.count--;
      return true;
    }
    if (drop.probability !== undefined) return this.random() < drop.probability;
    return true;
  }

  private deliver(reply: Uint8Array, request: PmpPcpServerRequest): void {
    if (this.shouldDrop()) {
      this.counters.dropped++;
      return;
    }
    const datagrams = this.faults.tamper?.(reply, request) ?? [reply];
    const sendAll = (): void => {
      if (this.closed) return;
      for (const datagram of datagrams) {
        this.counters.replies++;
        this.socket.send(datagram, request.from.port, request.from.address, (error) => {
          if (error) this.counters.errors++;
        });
      }
    };
    if (this.faults.delayMs > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        try {
          sendAll();
        } catch {
          this.counters.errors++;
        }
      }, this.faults.delayMs);
      this.timers.add(timer);
    } else {
      sendAll();
    }
  }

  /** The epoch of the reply being built: the table's, or the next lower one under `epochFalls`. */
  private epoch(): number {
    if (this.faults.epochFalls === true) {
      this.fallingEpoch = this.fallingEpoch >= 2 * FALLING_EPOCH_STEP ? this.fallingEpoch - FALLING_EPOCH_STEP : FALLING_EPOCH_TOP;
      return this.fallingEpoch;
    }
    return Math.max(0, Math.min(0xffffffff, this.table.epochSeconds()));
  }
}

function classify(bytes: Uint8Array): PmpPcpRequestKind {
  const version = bytes[0];
  const opcode = bytes[1];
  if (version === 0) {
    if (bytes.length === 2 && opcode === PmpOpcode.EXTERNAL_ADDRESS) return 'pmp.externalAddress';
    if (bytes.length === 12 && opcode === PmpOpcode.MAP_UDP) return 'pmp.mapUdp';
    if (bytes.length === 12 && opcode === PmpOpcode.MAP_TCP) return 'pmp.mapTcp';
    return 'pmp.other';
  }
  if (version === PCP_VERSION) {
    if (opcode === PcpOpcode.ANNOUNCE) return 'pcp.announce';
    if (opcode === PcpOpcode.MAP) return 'pcp.map';
    return 'pcp.other';
  }
  return 'other';
}

/** An IPv6 client that is not an IPv4 one seen through a dual-stack socket (`::ffff:a.b.c.d`). */
function isIpv6Client(address: string): boolean {
  return address.includes(':') && !/^::ffff:\d/i.test(address);
}

function stripMapped(ip: string): string {
  return ip.replace(/^::ffff:/i, '').toLowerCase();
}
