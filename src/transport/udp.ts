/**
 * The only `node:dgram` code in rxnat, as cold Observables over a fresh socket: one
 * request/response exchange ({@link udpExchange}), datagrams sent to several destinations and
 * every answer collected for a window ({@link udpCollect}), or every datagram arriving on a
 * local port, multicast included ({@link udpListen}). Protocol code (NAT-PMP, PCP, SSDP)
 * passes bytes in and gets accepted replies out; every socket failure becomes a typed error;
 * every timer runs on a scheduler. The socket itself is reached through {@link DatagramSocket},
 * so tests can run the same code over an in-memory network in virtual time.
 *
 * @packageDocumentation
 */
import { asyncScheduler, Observable, Subscription, type SchedulerLike } from 'rxjs';
import { GatewayTimeoutError, GatewayUnreachableError, ListenError, type GatewayProtocol } from '../errors.js';
import type { TransportLogger } from './logger.js';
import { openNodeDatagramSocket } from './node-datagram.js';

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
 * The part of a UDP socket the exchanges use. {@link openNodeDatagramSocket} adapts a
 * `node:dgram` socket; a test passes an in-memory one (with the exchanges' timers on a virtual
 * scheduler) to {@link createUdpExchange} and {@link createUdpCollect}.
 *
 * Failures after creation (bind, connect, send, ICMP errors on a connected socket) arrive on the
 * `onError` listener or a callback, as `node:dgram` reports them (with a `code` such as
 * `ECONNREFUSED` or `EADDRINUSE`).
 *
 * @example
 * ```ts
 * const socket = openNodeDatagramSocket('udp4');
 * socket.onMessage((data, remote) => console.log(remote.address, data.length));
 * socket.bind(0, undefined, () => socket.send(Uint8Array.of(0, 0), { address: '192.168.1.1', port: 5351 }, () => {}));
 * ```
 */
export interface DatagramSocket {
  /** Binds `port` (0: ephemeral) on `address` (undefined: any), exclusively; calls `done` once bound. */
  bind(port: number, address: string | undefined, done: () => void): void;
  /** Connects to the peer: later sends without a destination go there, and only its datagrams are received. */
  connect(port: number, address: string, done: (error?: Error) => void): void;
  /** Sends to `to`, or to the connected peer when `to` is undefined. */
  send(message: Uint8Array, to: UdpEndpoint | undefined, done: (error: Error | null) => void): void;
  /** The bound local address and port. */
  local(): UdpEndpoint;
  /** Multicast TTL and, when given, the outgoing interface (never joins a group). */
  setMulticast(ttl: number, interfaceAddress: string | undefined): void;
  /**
   * Joins a multicast group on an interface (undefined: the kernel's choice), for
   * {@link udpListen}. Optional: a socket without it cannot listen to groups.
   */
  addMembership?(group: string, interfaceAddress: string | undefined): void;
  onMessage(listener: (data: Uint8Array, remote: UdpEndpoint) => void): void;
  onError(listener: (error: Error) => void): void;
  /** Closes the socket; closing twice does nothing. */
  close(): void;
}

/**
 * Opens a {@link DatagramSocket} of a family. `reuseAddr` (only {@link udpListen} asks for it)
 * lets several sockets bind the same port, each receiving the multicast datagrams.
 *
 * @example
 * ```ts
 * const exchange = createUdpExchange(openNodeDatagramSocket); // the same as udpExchange
 * ```
 */
export type OpenDatagramSocket = (type: 'udp4' | 'udp6', options?: { readonly reuseAddr?: boolean }) => DatagramSocket;

export { openNodeDatagramSocket } from './node-datagram.js';

/**
 * What `udpExchange` (a transport's `udpExchange`) is asked to do.
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
   * other source and reports ICMP port-unreachable as ECONNREFUSED. Set false when the server
   * may not be connected to; the source of each datagram is then checked here. (To collect
   * answers from anyone, see `udpCollect`.)
   */
  readonly connect?: boolean;
  /** Counters to update. */
  readonly stats?: UdpStats;
  /** Scheduler of the retransmission and deadline timers. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** Where every send, retransmission, reply, drop and failure is logged (namespace `rxnat:<protocol>`). Default: silent. */
  readonly logger?: TransportLogger;
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

/**
 * What `udpCollect` (a transport's `udpCollect`) is asked to do: datagrams for several destinations (a multicast group
 * and unicast addresses alike), sent from one unconnected socket in rounds, and a window during
 * which every answer, from any source, is collected.
 *
 * @example
 * ```ts
 * const options: UdpCollectOptions = { protocol: 'upnp', datagrams: [{ message, to: { address: '239.255.255.250', port: 1900 } }], windowMs: 2000, repeatIntervalMs: 500 };
 * ```
 */
export interface UdpCollectOptions {
  /** The protocol reported in typed errors and logs. */
  readonly protocol: GatewayProtocol;
  /** One round: each datagram is sent to its destination, in order. */
  readonly datagrams: readonly { readonly message: Uint8Array; readonly to: UdpEndpoint }[];
  /** How long to listen, in ms, from subscription; the stream completes then. */
  readonly windowMs: number;
  /** Delay between rounds inside the window, in ms. Default: one round only. */
  readonly repeatIntervalMs?: number;
  /** Which answers to emit; the others are dropped and counted. Default: all. A throwing predicate counts as a refusal. */
  readonly accept?: (message: Uint8Array, remote: UdpEndpoint) => boolean;
  /** Local address to bind (and the multicast interface). Default: any. */
  readonly localAddress?: string;
  /** Multicast TTL, set when a destination is an IPv4 multicast address. Default 2. */
  readonly multicastTtl?: number;
  /** Counters to update. */
  readonly stats?: UdpStats;
  /** Scheduler of the round and window timers. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** Where sends, answers and failures are logged (namespace `rxnat:<protocol>`). Default: silent. */
  readonly logger?: TransportLogger;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ECONNRESET']);

/** What one run of the engine does: {@link udpExchange} and {@link udpCollect} both come down to this. */
interface Run {
  readonly protocol: GatewayProtocol;
  /** The peer named in errors, and whose family picks the socket type. */
  readonly host: string;
  /** The peer a connected socket talks to, and whose source an unconnected `'first'` run checks. */
  readonly peer: UdpEndpoint;
  /** Each round's datagrams, built once the local endpoint is known; `to` undefined: the connected peer. */
  readonly round: (local: UdpEndpoint) => readonly { readonly message: Uint8Array; readonly to: UdpEndpoint | undefined }[];
  readonly accept: (message: Uint8Array, remote: UdpEndpoint) => boolean;
  readonly timeoutMs: number;
  readonly retransmit: RetransmitSchedule | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number;
  readonly connect: boolean;
  readonly until: 'first' | 'all';
  /** A failed send fails the run (`'fail'`) or only loses that datagram (`'ignore'`). */
  readonly sendErrors: 'fail' | 'ignore';
  readonly multicastTtl: number | undefined;
  readonly stats: UdpStats | undefined;
  readonly scheduler: SchedulerLike;
  readonly logger: TransportLogger | undefined;
}

function run(open: OpenDatagramSocket, options: Run): Observable<UdpReply> {
  return new Observable<UdpReply>((subscriber) => {
    const { scheduler, stats, until, connect } = options;
    const timers = new Subscription();
    let closed = false;
    let local: UdpEndpoint | undefined;
    let round: ReturnType<Run['round']> | undefined;
    let sendCount = 0;
    if (stats) stats.exchanges++;

    const namespace = `rxnat:${options.protocol}`;
    const target = `${options.peer.address}:${options.peer.port}`;
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

    let socket: DatagramSocket;
    try {
      // The host is an IP literal (or, for STUN, a name resolved over IPv4): a colon means IPv6.
      // (node:net's isIPv6 compiles a large regular expression on first use: ~8 ms of start-up.)
      socket = open(options.host.includes(':') ? 'udp6' : 'udp4');
    } catch (error) {
      subscriber.error(socketError(error));
      return;
    }

    const send = (): void => {
      if (closed || round === undefined) return;
      sendCount += 1;
      for (const datagram of round) {
        const where = datagram.to === undefined ? target : `${datagram.to.address}:${datagram.to.port}`;
        const done = (error: Error | null): void => {
          if (!error) return;
          if (options.sendErrors === 'fail') fail(socketError(error));
          else log(`send to ${where} failed: ${error.message}`);
        };
        try {
          socket.send(datagram.message, datagram.to, done);
          if (stats) stats.sent++;
        } catch (error) {
          done(error as Error);
          if (options.sendErrors === 'fail') return;
          continue;
        }
        log(`${sendCount === 1 ? 'send' : `retransmit #${sendCount - 1}`} to ${where}: ${hex(datagram.message)}`);
      }
      const delay = options.retransmit?.(sendCount);
      if (delay !== undefined) timers.add(scheduler.schedule(send, delay));
    };

    const start = (): void => {
      if (closed) return;
      try {
        local = socket.local();
        if (options.multicastTtl !== undefined) {
          try {
            socket.setMulticast(options.multicastTtl, options.localAddress);
          } catch {
            // keep the defaults
          }
        }
        round = options.round(local);
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
        else fail(new GatewayTimeoutError(options.protocol, options.host, options.timeoutMs));
      }, options.timeoutMs),
    );
    socket.onError((error) => fail(socketError(error)));
    socket.onMessage((data, remote) => {
      if (stats) stats.received++;
      if (closed || local === undefined) {
        if (stats) stats.dropped++;
        return;
      }
      let ok = false;
      try {
        // A connected socket only ever sees the server; an unconnected one checks the source,
        // except when collecting answers from anyone (multicast search).
        const sourceOk = connect || until === 'all' || (sameAddress(remote.address, options.peer.address) && remote.port === options.peer.port);
        ok = sourceOk && options.accept(data, remote);
      } catch {
        ok = false;
      }
      if (!ok) {
        if (stats) stats.dropped++;
        log(`dropped ${data.length} bytes from ${remote.address}:${remote.port}: not a reply to this request`, { bytes: hex(data) });
        return;
      }
      if (stats) stats.accepted++;
      log(`reply from ${remote.address}:${remote.port}: ${hex(data)}`);
      subscriber.next({ message: data, remote, local });
      if (until === 'first') subscriber.complete();
    });

    try {
      socket.bind(options.localPort, options.localAddress, () => {
        if (closed) return;
        if (!connect) return start();
        try {
          socket.connect(options.peer.port, options.peer.address, (error?: Error) => (error ? fail(socketError(error)) : start()));
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
      socket.close();
    };
  });
}

/**
 * Builds {@link udpExchange} over another socket implementation (an in-memory network in tests).
 *
 * @example
 * ```ts
 * const exchange = createUdpExchange(fakeNetwork.open);
 * exchange({ protocol: 'pmp', host: '192.168.1.1', port: 5351, message, accept, scheduler: testScheduler });
 * ```
 */
export function createUdpExchange(open: OpenDatagramSocket): (options: UdpExchangeOptions) => Observable<UdpReply> {
  return (options) => {
    const connect = options.connect ?? true;
    const build = options.message;
    return run(open, {
      protocol: options.protocol,
      host: options.host,
      peer: { address: options.host, port: options.port },
      round: (local) => [{ message: typeof build === 'function' ? build(local) : build, to: connect ? undefined : { address: options.host, port: options.port } }],
      accept: options.accept,
      timeoutMs: options.timeoutMs ?? 2000,
      retransmit: options.retransmit,
      localAddress: options.localAddress,
      localPort: options.localPort ?? 0,
      connect,
      until: 'first',
      sendErrors: 'fail',
      multicastTtl: undefined,
      stats: options.stats,
      scheduler: options.scheduler ?? asyncScheduler,
      logger: options.logger,
    });
  };
}

/**
 * Builds {@link udpCollect} over another socket implementation (an in-memory network in tests).
 *
 * @example
 * ```ts
 * const collect = createUdpCollect(fakeNetwork.open);
 * ```
 */
export function createUdpCollect(open: OpenDatagramSocket): (options: UdpCollectOptions) => Observable<UdpReply> {
  return (options) => {
    const first = options.datagrams[0]?.to ?? { address: '0.0.0.0', port: 0 };
    const interval = options.repeatIntervalMs;
    return run(open, {
      protocol: options.protocol,
      host: first.address,
      peer: first,
      round: () => options.datagrams.map((d) => ({ message: d.message, to: d.to })),
      accept: options.accept ?? (() => true),
      timeoutMs: options.windowMs,
      // Rounds at 0, interval, 2 × interval, … while inside the window.
      retransmit: interval === undefined || interval <= 0 ? undefined : (rounds) => (rounds * interval < options.windowMs ? interval : undefined),
      localAddress: options.localAddress,
      localPort: 0,
      connect: false,
      until: 'all',
      sendErrors: 'ignore',
      multicastTtl: options.datagrams.some((d) => isIpv4Multicast(d.to.address)) ? (options.multicastTtl ?? 2) : undefined,
      stats: options.stats,
      scheduler: options.scheduler ?? asyncScheduler,
      logger: options.logger,
    });
  };
}

/**
 * Sends a datagram from a fresh ephemeral socket and emits the first reply `accept` lets
 * through, then completes. Cold: nothing happens before subscription; every way out (reply, deadline, error,
 * unsubscribe) closes the socket and cancels the timers.
 *
 * Errors: {@link GatewayTimeoutError} at the deadline,
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
export const udpExchange: (options: UdpExchangeOptions) => Observable<UdpReply> = createUdpExchange(openNodeDatagramSocket);

/**
 * Sends datagrams to several destinations (a multicast group, unicast addresses) from one fresh
 * unconnected ephemeral socket, in rounds every `repeatIntervalMs`, and emits every answer
 * `accept` lets through, from any source, until `windowMs` has passed; then completes. The
 * socket never joins a multicast group. A send that fails (no route to the group) loses only
 * that datagram; the stream errors ({@link GatewayUnreachableError}) only when the socket
 * itself fails, for example cannot be bound. Unsubscribing closes the socket at once.
 *
 * @example
 * ```ts
 * udpCollect({ protocol: 'upnp', datagrams: [{ message: search, to: { address: '239.255.255.250', port: 1900 } }], windowMs: 2000, repeatIntervalMs: 500 })
 *   .subscribe(({ message, remote }) => console.log(remote.address, message.length));
 * ```
 */
export const udpCollect: (options: UdpCollectOptions) => Observable<UdpReply> = createUdpCollect(openNodeDatagramSocket);

/**
 * What `udpListen` (a transport's `udpListen`) is asked to do: bind a local address and port,
 * optionally join a multicast group, and report every datagram that arrives.
 *
 * @example
 * ```ts
 * const options: UdpListenOptions = { protocol: 'pmp', address: '0.0.0.0', port: 5350, group: '224.0.0.1', reuseAddr: true };
 * ```
 */
export interface UdpListenOptions {
  /** The protocol named in logs (namespace `rxnat:<protocol>`). */
  readonly protocol: GatewayProtocol;
  /** Local address to bind. Default `0.0.0.0` (`::` when `group` is IPv6). */
  readonly address?: string;
  /** Local port to bind (0: ephemeral; see the `listening` callback). */
  readonly port: number;
  /** A multicast group to join after binding. Default none (unicast only). */
  readonly group?: string;
  /** The interface (by its address) to join `group` on. Default: the kernel's choice. */
  readonly interfaceAddress?: string;
  /** Share the port with other sockets that also ask for it (`SO_REUSEADDR`). Default false. */
  readonly reuseAddr?: boolean;
  /** Called once the socket is bound, with the local endpoint (a test learns an ephemeral port). */
  readonly listening?: (local: UdpEndpoint) => void;
  /** Counters to update (`received` for every datagram; `accepted` for every one emitted). */
  readonly stats?: UdpStats;
  /** Where the bind, the join and every datagram are logged. Default: silent. */
  readonly logger?: TransportLogger;
}

/**
 * One datagram {@link udpListen} received.
 *
 * @example
 * ```ts
 * udpListen(options).subscribe((d: UdpDatagram) => console.log(d.remote.address, d.message.length));
 * ```
 */
export interface UdpDatagram {
  readonly message: Uint8Array;
  /** Who sent it. */
  readonly remote: UdpEndpoint;
}

/**
 * Builds {@link udpListen} over another socket implementation (an in-memory network in tests).
 *
 * @example
 * ```ts
 * const listen = createUdpListen(fakeNetwork.open);
 * ```
 */
export function createUdpListen(open: OpenDatagramSocket): (options: UdpListenOptions) => Observable<UdpDatagram> {
  return (options) =>
    new Observable<UdpDatagram>((subscriber) => {
      const family = (options.address ?? options.group ?? '').includes(':') ? 'udp6' : 'udp4';
      const address = options.address ?? (family === 'udp6' ? '::' : '0.0.0.0');
      const where = `${family === 'udp6' ? `[${address}]` : address}:${options.port}`;
      const namespace = `rxnat:${options.protocol}`;
      const log = (message: string, data?: Record<string, unknown>): void => options.logger?.debug(namespace, message, data);
      let closed = false;
      let bound = false;
      const fail = (error: unknown): void => {
        if (closed) return;
        const code = (error as { code?: unknown } | null)?.code;
        const reason = typeof code === 'string' ? code : String((error as Error | null)?.message ?? error);
        const listenError = new ListenError(address, options.port, reason, { cause: error });
        log(`listener on ${where} failed: ${listenError.message}`);
        subscriber.error(listenError);
      };

      let socket: DatagramSocket;
      try {
        socket = open(family, { reuseAddr: options.reuseAddr === true });
      } catch (error) {
        fail(error);
        return;
      }
      socket.onError((error) => fail(error));
      socket.onMessage((data, remote) => {
        if (options.stats) options.stats.received++;
        if (closed || !bound) {
          if (options.stats) options.stats.dropped++;
          return;
        }
        if (options.stats) options.stats.accepted++;
        log(`datagram on ${where} from ${remote.address}:${remote.port}: ${hex(data)}`);
        subscriber.next({ message: data, remote });
      });
      try {
        socket.bind(options.port, address, () => {
          if (closed) return;
          bound = true;
          if (options.group !== undefined) {
            try {
              if (socket.addMembership === undefined) throw new Error('this socket cannot join groups');
              socket.addMembership(options.group, options.interfaceAddress);
              log(`listening on ${where}, joined ${options.group}${options.interfaceAddress ? ` on ${options.interfaceAddress}` : ''}`);
            } catch (error) {
              // Unicast datagrams still arrive: the listener goes on without the group.
              log(`listening on ${where}; cannot join ${options.group}: ${(error as Error).message}`);
            }
          } else {
            log(`listening on ${where}`);
          }
          let local: UdpEndpoint;
          try {
            local = socket.local();
          } catch (error) {
            fail(error);
            return;
          }
          options.listening?.(local);
        });
      } catch (error) {
        fail(error);
      }
      return () => {
        closed = true;
        socket.close();
      };
    });
}

/**
 * Listens on a local UDP port: binds `address:port` (with `reuseAddr`, shared with other
 * sockets that ask for it), joins `group` when given (a group that cannot be joined is logged
 * and skipped: unicast datagrams still arrive), and emits every datagram that arrives, from
 * anyone: the caller checks the source. Never completes by itself. Cold: nothing is bound before
 * subscription; unsubscribing closes the socket (leaving the group).
 *
 * Errors: {@link ListenError} when the socket cannot be bound (`EADDRINUSE`, `EACCES`,
 * `EADDRNOTAVAIL`) or fails later.
 *
 * @example
 * ```ts
 * udpListen({ protocol: 'pmp', address: '0.0.0.0', port: 5350, group: '224.0.0.1', reuseAddr: true })
 *   .subscribe(({ message, remote }) => console.log(remote.address, message.length));
 * ```
 */
export const udpListen: (options: UdpListenOptions) => Observable<UdpDatagram> = createUdpListen(openNodeDatagramSocket);

function sameAddress(a: string, b: string): boolean {
  const strip = (ip: string): string => ip.replace(/^::ffff:/i, '').toLowerCase();
  return strip(a) === strip(b);
}

function isIpv4Multicast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 64)).toString('hex') + (bytes.byteLength > 64 ? '…' : '');
