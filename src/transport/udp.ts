/**
 * The only `node:dgram` code in rxnat: one request/response exchange over a fresh ephemeral
 * socket, as a cold Observable. Protocol code (NAT-PMP, PCP, SSDP) passes bytes in and gets
 * accepted replies out; every socket failure becomes a typed error.
 *
 * @packageDocumentation
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { asyncScheduler, Observable, Subscription, type SchedulerLike } from 'rxjs';
import type { Logger } from '../core/logger.js';
import { GatewayTimeoutError, GatewayUnreachableError, type GatewayProtocol } from '../errors.js';

/**
 * An address and port.
 *
 * @example
 * ```ts
 * const server: UdpEndpoint = { address: '192.168.1.1', port: 5351 };
 * ```
 */
export interface UdpEndpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * Counters a caller can pass to several exchanges to see what happened on the wire: how many
 * datagrams went out, came in, were accepted, and were dropped (by source or by `accept`).
 *
 * @example
 * ```ts
 * const stats = createUdpStats();
 * udpExchange({ ...options, stats }).subscribe({ complete: () => console.log(stats.dropped) });
 * ```
 */
export interface UdpStats {
  /** Exchanges started. */
  exchanges: number;
  /** Datagrams sent, retransmissions included. */
  sent: number;
  /** Datagrams received on exchange sockets. */
  received: number;
  /** Datagrams `accept` let through. */
  accepted: number;
  /** Datagrams ignored: from another source (unconnected sockets), refused by `accept`, or late. */
  dropped: number;
}

/**
 * A zeroed {@link UdpStats}.
 *
 * @example
 * ```ts
 * const stats = createUdpStats(); // { exchanges: 0, sent: 0, received: 0, accepted: 0, dropped: 0 }
 * ```
 */
export function createUdpStats(): UdpStats {
  return { exchanges: 0, sent: 0, received: 0, accepted: 0, dropped: 0 };
}

/**
 * When to send again: given how many sends happened so far (1 after the first), the delay in ms
 * before the next one, or `undefined` to stop sending (the exchange still waits for its deadline).
 *
 * @example
 * ```ts
 * const twice: RetransmitSchedule = (sends) => (sends < 2 ? 500 : undefined);
 * ```
 */
export type RetransmitSchedule = (sends: number) => number | undefined;

/**
 * Options of {@link exponentialBackoff}.
 *
 * @example
 * ```ts
 * exponentialBackoff({ initialMs: 250, maxIntervalMs: 2000, jitter: 0.1 });
 * ```
 */
export interface ExponentialBackoffOptions {
  /** Delay after the first send, in ms. */
  readonly initialMs: number;
  /** Multiplier between consecutive delays. Default 2. */
  readonly factor?: number;
  /** Largest delay, in ms. Default unbounded. */
  readonly maxIntervalMs?: number;
  /** Most sends in all (first one included). Default unbounded (the deadline ends it). */
  readonly maxSends?: number;
  /** Random spread of each delay, as a fraction: 0.1 gives ±10% (RFC 6887 §8.1.1 RAND). Default 0. */
  readonly jitter?: number;
  /** Source of randomness in [0, 1). Default `Math.random`. */
  readonly random?: () => number;
}

/**
 * A doubling retransmission schedule: NAT-PMP's "250 ms, then double" (RFC 6886 §3.1) is
 * `exponentialBackoff({ initialMs: 250 })`; PCP's RFC 6887 §8.1.1 schedule adds ±10% jitter
 * and a cap.
 *
 * @example
 * ```ts
 * const schedule = exponentialBackoff({ initialMs: 250, maxIntervalMs: 2000, jitter: 0.1 });
 * schedule(1); // ~250
 * schedule(2); // ~500
 * ```
 */
export function exponentialBackoff(options: ExponentialBackoffOptions): RetransmitSchedule {
  const factor = options.factor ?? 2;
  const max = options.maxIntervalMs ?? Infinity;
  const jitter = options.jitter ?? 0;
  const random = options.random ?? Math.random;
  return (sends) => {
    if (options.maxSends !== undefined && sends >= options.maxSends) return undefined;
    const base = Math.min(max, options.initialMs * factor ** (sends - 1));
    const spread = jitter === 0 ? 1 : 1 + jitter * (2 * random() - 1);
    return Math.max(0, Math.round(base * spread));
  };
}

/**
 * What {@link udpExchange} is asked to do.
 *
 * @example
 * ```ts
 * const options: UdpExchangeOptions = { protocol: 'pmp', host: '192.168.1.1', port: 5351, message: Uint8Array.of(0, 0), accept: (m) => m.length === 12, timeoutMs: 1000 };
 * ```
 */
export interface UdpExchangeOptions {
  /** The protocol reported in typed errors. */
  readonly protocol: GatewayProtocol;
  /** The server's IP address (`udp6` is used when it is IPv6). */
  readonly host: string;
  /** The server's UDP port. */
  readonly port: number;
  /**
   * The datagram to send, or a function building it from the local endpoint the socket ended up
   * with (PCP puts the client's address in its header).
   */
  readonly message: Uint8Array | ((local: UdpEndpoint) => Uint8Array);
  /**
   * Whether a datagram from the server is a valid reply to this request. Everything else is
   * dropped and counted. A throwing predicate counts as a refusal.
   */
  readonly accept: (message: Uint8Array, remote: UdpEndpoint) => boolean;
  /** Deadline from subscription, in ms. Default 2000. */
  readonly timeoutMs?: number;
  /** When to resend. Default: never. */
  readonly retransmit?: RetransmitSchedule;
  /** Local address to bind. Default: any (the kernel picks the route's source). */
  readonly localAddress?: string;
  /** Local port to bind. Default 0 (ephemeral). Never bind 5350/5351 from a client. */
  readonly localPort?: number;
  /**
   * `connect()` the socket to the server (default). The kernel then drops datagrams from any
   * other source and reports ICMP port-unreachable as ECONNREFUSED. Set false for multicast
   * (SSDP), where replies come from other addresses; the source is then not checked here.
   */
  readonly connect?: boolean;
  /**
   * `'first'` (default): emit the first accepted reply and complete; the deadline is a
   * {@link GatewayTimeoutError}. `'all'`: emit every accepted reply until the deadline, then
   * complete (an SSDP search window).
   */
  readonly until?: 'first' | 'all';
  /** Counters to update. */
  readonly stats?: UdpStats;
  /** Scheduler of the retransmission and deadline timers. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** Called once the socket is bound, before the first send (set multicast TTL and the like). */
  readonly configure?: (socket: Socket) => void;
  /** Where every send, retransmission, reply, drop and failure is logged (namespace `rxnat:<protocol>`). Default: silent. */
  readonly logger?: Logger;
}

/**
 * One accepted reply.
 *
 * @example
 * ```ts
 * udpExchange(options).subscribe((reply: UdpReply) => console.log(reply.remote.address, reply.local.port));
 * ```
 */
export interface UdpReply {
  readonly message: Uint8Array;
  /** Who sent it. */
  readonly remote: UdpEndpoint;
  /** The local address and port the exchange's socket used. */
  readonly local: UdpEndpoint;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ECONNRESET']);

/**
 * Sends a datagram from a fresh ephemeral socket and emits the replies `accept` lets through.
 * Cold: nothing happens before subscription; every way out (reply, deadline, error,
 * unsubscribe) closes the socket and cancels the timers.
 *
 * Errors: {@link GatewayTimeoutError} at the deadline (mode `'first'`),
 * {@link GatewayUnreachableError} on ECONNREFUSED (ICMP port unreachable, reported at once on a
 * connected socket), no route, or a socket that cannot be bound.
 *
 * @example
 * ```ts
 * udpExchange({
 *   protocol: 'pmp', host: '192.168.1.1', port: 5351, message: Uint8Array.of(0, 0),
 *   accept: (m) => m.length === 12 && m[1] === 128, timeoutMs: 1000,
 *   retransmit: exponentialBackoff({ initialMs: 250 }),
 * }).subscribe(({ message, local }) => console.log(message, 'via', local.address));
 * ```
 */
export function udpExchange(options: UdpExchangeOptions): Observable<UdpReply> {
  return new Observable<UdpReply>((subscriber) => {
    const scheduler = options.scheduler ?? asyncScheduler;
    const timeoutMs = options.timeoutMs ?? 2000;
    const connect = options.connect ?? true;
    const until = options.until ?? 'first';
    const stats = options.stats;
    const timers = new Subscription();
    let closed = false;
    let local: UdpEndpoint | undefined;
    let message: Uint8Array | undefined;
    let sendCount = 0;
    if (stats) stats.exchanges++;

    const namespace = `rxnat:${options.protocol}`;
    const target = `${options.host}:${options.port}`;
    const log = (message: string, data?: Record<string, unknown>): void => options.logger?.debug(namespace, message, data);
    const fail = (error: Error): void => {
      if (closed) return;
      log(`exchange with ${target} failed: ${error.message}`);
      subscriber.error(error);
    };
    const socketError = (error: unknown): Error => {
      const code = (error as { code?: unknown } | null)?.code;
      const reason = typeof code === 'string' ? (UNREACHABLE_CODES.has(code) ? code : `${code} (${(error as Error).message})`) : String(error);
      return new GatewayUnreachableError(options.protocol, options.host, reason, { cause: error });
    };

    let socket: Socket;
    try {
      socket = createSocket({ type: isIPv6(options.host) ? 'udp6' : 'udp4' });
    } catch (error) {
      subscriber.error(socketError(error));
      return;
    }

    const send = (): void => {
      if (closed || message === undefined) return;
      const done = (error: Error | null): void => {
        if (error) fail(socketError(error));
      };
      try {
        if (connect) socket.send(message, done);
        else socket.send(message, options.port, options.host, done);
        if (stats) stats.sent++;
      } catch (error) {
        fail(socketError(error));
        return;
      }
      sendCount += 1;
      log(`${sendCount === 1 ? 'send' : `retransmit #${sendCount - 1}`} to ${target}: ${hex(message)}`);
      const delay = options.retransmit?.(sendCount);
      if (delay !== undefined) timers.add(scheduler.schedule(send, delay));
    };

    const start = (): void => {
      if (closed) return;
      try {
        const address = socket.address();
        local = { address: address.address, port: address.port };
        options.configure?.(socket);
        message = typeof options.message === 'function' ? options.message(local) : options.message;
      } catch (error) {
        fail(error instanceof Error && 'code' in error ? socketError(error) : (error as Error));
        return;
      }
      send();
    };

    // The deadline runs from subscription: binding and connecting count against it.
    timers.add(
      scheduler.schedule(() => {
        if (until === 'all') subscriber.complete();
        else fail(new GatewayTimeoutError(options.protocol, options.host, timeoutMs));
      }, timeoutMs),
    );
    socket.on('error', (error) => fail(socketError(error)));
    socket.on('message', (data: Buffer, rinfo: RemoteInfo) => {
      if (stats) stats.received++;
      if (closed || local === undefined) {
        if (stats) stats.dropped++;
        return;
      }
      const remote: UdpEndpoint = { address: rinfo.address, port: rinfo.port };
      let ok = false;
      try {
        // A connected socket only ever sees the server; an unconnected one checks the source,
        // except when collecting answers from anyone (multicast search).
        const sourceOk = connect || until === 'all' || (sameAddress(rinfo.address, options.host) && rinfo.port === options.port);
        ok = sourceOk && options.accept(data, remote);
      } catch {
        ok = false;
      }
      if (!ok) {
        if (stats) stats.dropped++;
        log(`dropped ${data.length} bytes from ${rinfo.address}:${rinfo.port}: not a reply to this request`, { bytes: hex(data) });
        return;
      }
      if (stats) stats.accepted++;
      log(`reply from ${rinfo.address}:${rinfo.port}: ${hex(data)}`);
      subscriber.next({ message: data, remote, local });
      if (until === 'first') subscriber.complete();
    });

    try {
      socket.bind({ port: options.localPort ?? 0, address: options.localAddress, exclusive: true }, () => {
        if (closed) return;
        if (!connect) return start();
        try {
          socket.connect(options.port, options.host, (error?: Error) => (error ? fail(socketError(error)) : start()));
        } catch (error) {
          fail(socketError(error));
        }
      });
    } catch (error) {
      fail(socketError(error));
    }

    return () => {
      closed = true;
      timers.unsubscribe();
      try {
        socket.close();
      } catch {
        // already closed
      }
    };
  });
}

function sameAddress(a: string, b: string): boolean {
  const strip = (ip: string): string => ip.replace(/^::ffff:/i, '').toLowerCase();
  return strip(a) === strip(b);
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 64)).toString('hex') + (bytes.byteLength > 64 ? '…' : '');
