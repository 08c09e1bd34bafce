/**
 * Datagrams sent before the code that waits for their answers is loaded, so that the wait and
 * the loading overlap: the CLI sends `map`'s first request (the UPnP search's M-SEARCH, or the
 * PCP or NAT-PMP probe) from `main.cjs`, then loads the command (~20 ms). The socket, and what
 * it received meanwhile, is then taken over by the first exchange that opens a socket through
 * {@link adoptingOpen}. No rxjs here: this runs before rxjs is loaded.
 *
 * @packageDocumentation
 */
import { createSocket } from 'node:dgram';
import { adaptNodeSocket } from './node-datagram.js';
import type { DatagramSocket, OpenDatagramSocket, UdpEndpoint } from './udp.js';

/**
 * A datagram and where it goes.
 *
 * @example
 * ```ts
 * const first: OutgoingDatagram = { message: mSearch, to: { address: '192.168.1.1', port: 1900 } };
 * ```
 */
export interface OutgoingDatagram {
  /** The bytes, or a function building them from the socket's local endpoint (PCP names the client's address). */
  readonly message: Uint8Array | ((local: UdpEndpoint) => Uint8Array);
  readonly to: UdpEndpoint;
}

/**
 * Datagrams already sent from a socket of their own, waiting to be taken over. The object holds
 * its own code (it crosses from the CLI's `main.cjs` into a command's bundle).
 *
 * @example
 * ```ts
 * const early = sendEarly([{ message, to }]);
 * const socket = early.adopt(() => openNodeDatagramSocket('udp4'));
 * ```
 */
export interface EarlyDatagrams {
  /** What was sent, in order. */
  readonly datagrams: readonly OutgoingDatagram[];
  /** The local address the socket was bound to (undefined: any). */
  readonly localAddress: string | undefined;
  /**
   * The socket, once: a {@link DatagramSocket} whose `bind(0, localAddress)` is the bind already
   * made (and, with `connect`, whose `connect` to the same peer is the connect made), whose first
   * send of each of `datagrams` (same bytes, same destination) is the send already made, and
   * whose message listener gets what arrived meanwhile, in order, right after its first send. A
   * bind or connect elsewhere moves everything to a socket from `fresh`. Undefined when the
   * socket failed, was closed, or was taken already.
   */
  adopt(fresh: () => DatagramSocket): DatagramSocket | undefined;
  /**
   * Calls `listener` once every datagram has left (its send called back) or the socket failed:
   * `node:dgram` binds and sends in later ticks, so a caller that goes on with synchronous work
   * (loading code) waits for this first, or the datagrams leave only after that work.
   */
  whenSent(listener: () => void): void;
  /** Closes the socket if nobody took it; closing twice does nothing. */
  close(): void;
}

/**
 * Options of {@link sendEarly}.
 *
 * @example
 * ```ts
 * const options: SendEarlyOptions = { localAddress: '192.168.1.10', abandonAfterMs: 5000 };
 * ```
 */
export interface SendEarlyOptions {
  /** Local address to bind. Default: any. */
  readonly localAddress?: string;
  /** Closed after this long if nobody took the socket, in ms. Default 10 000. */
  readonly abandonAfterMs?: number;
  /** Most datagrams kept for the taker; later ones are dropped. Default 64. */
  readonly maxBuffered?: number;
  /**
   * Connect the socket to the (single) datagram's destination before sending, as a request/reply
   * exchange does (`udpExchange`: only the peer's datagrams arrive, ICMP errors are reported).
   * Default false.
   */
  readonly connect?: boolean;
}

/**
 * Binds a UDP (IPv4) socket on an ephemeral port and sends `datagrams` from it at once. The socket
 * does not keep the process alive until it is taken ({@link EarlyDatagrams.adopt}); untaken, it
 * closes after `abandonAfterMs`. Never throws: a socket that fails is simply not offered.
 *
 * @example
 * ```ts
 * const early = sendEarly([{ message: encodeMSearch({ searchTarget }), to: { address: '192.168.1.1', port: 1900 } }]);
 * ```
 */
export function sendEarly(datagrams: readonly OutgoingDatagram[], options: SendEarlyOptions = {}): EarlyDatagrams {
  const maxBuffered = options.maxBuffered ?? 64;
  const peer = options.connect === true && datagrams.length === 1 ? datagrams[0]!.to : undefined;
  const raw = createSocket('udp4');
  raw.unref();
  const socket = adaptNodeSocket(raw);
  const buffered: Array<readonly [Uint8Array, UdpEndpoint]> = [];
  let listener: ((data: Uint8Array, remote: UdpEndpoint) => void) | undefined;
  let delivering = false;
  let errorListener: ((error: Error) => void) | undefined;
  let failed: Error | undefined;
  /** Bound (and connected, with a peer): what the taker's bind or connect waits for. */
  let ready = false;
  const whenReady: Array<() => void> = [];
  /** What left, as sent (a built message's bytes). */
  const sent: OutgoingSent[] = [];
  let state: 'offered' | 'taken' | 'closed' = 'offered';
  let sending = datagrams.length;
  const sentListeners: Array<() => void> = [];
  const settled = (): void => {
    sending = 0;
    for (const next of sentListeners.splice(0)) next();
  };
  const oneSent = (): void => {
    if (sending > 0 && --sending === 0) settled();
  };

  const close = (): void => {
    if (state === 'closed') return;
    state = 'closed';
    clearTimeout(abandon);
    socket.close();
    settled();
  };
  const abandon = setTimeout(() => {
    if (state === 'offered') close();
  }, options.abandonAfterMs ?? 10_000);
  abandon.unref();

  socket.onMessage((data, remote) => {
    if (delivering && listener) listener(data, remote);
    else if (buffered.length < maxBuffered) buffered.push([data, remote]);
  });
  socket.onError((error) => {
    if (errorListener) errorListener(error);
    else {
      failed ??= error;
      if (state === 'offered') close();
      settled();
    }
  });
  const sendAll = (): void => {
    ready = true;
    for (const datagram of datagrams) {
      try {
        const bytes = typeof datagram.message === 'function' ? datagram.message(socket.local()) : datagram.message;
        socket.send(bytes, peer === undefined ? datagram.to : undefined, oneSent);
        sent.push({ bytes, to: datagram.to });
      } catch {
        // not sent: the taker sends it itself (it is not in `sent`)
        oneSent();
      }
    }
    for (const next of whenReady.splice(0)) next();
  };
  try {
    socket.bind(0, options.localAddress, () => {
      if (peer === undefined) return sendAll();
      try {
        socket.connect(peer.port, peer.address, (error) => {
          if (!error) return sendAll();
          failed = error;
          close();
        });
      } catch {
        close();
      }
    });
  } catch (error) {
    failed = error instanceof Error ? error : new Error(String(error));
    close();
  }

  const adopt = (fresh: () => DatagramSocket): DatagramSocket | undefined => {
    if (state !== 'offered' || failed !== undefined) {
      close();
      return undefined;
    }
    state = 'taken';
    clearTimeout(abandon);
    raw.ref();
    /** The first send of each early datagram is the one already made. */
    const unsent = [...sent];
    let target: DatagramSocket = socket;
    let onMessage: ((data: Uint8Array, remote: UdpEndpoint) => void) | undefined;
    let onError: ((error: Error) => void) | undefined;
    let replayed = false;
    const replay = (): void => {
      delivering = true;
      for (const [data, remote] of buffered.splice(0)) listener?.(data, remote);
    };
    const afterReady = (next: () => void): void => {
      if (ready) process.nextTick(next);
      else whenReady.push(next);
    };
    /** Everything moves to a socket of the taker's own; the early answers are lost. */
    const swap = (): DatagramSocket => {
      socket.close();
      target = fresh();
      if (onMessage) target.onMessage(onMessage);
      if (onError) target.onError(onError);
      return target;
    };
    return {
      bind(port, address, done) {
        if (target !== socket) return target.bind(port, address, done);
        if (port !== 0 || address !== options.localAddress) return swap().bind(port, address, done);
        afterReady(done);
      },
      connect(port, address, done) {
        if (target !== socket) return target.connect(port, address, done);
        if (peer === undefined) return socket.connect(port, address, done);
        if (peer.port === port && peer.address === address) return afterReady(() => done());
        const other = swap();
        other.bind(0, options.localAddress, () => other.connect(port, address, done));
      },
      send(message, to, done) {
        if (!replayed) {
          // The taker has its local endpoint now (it sends from start()): what came, in order.
          replayed = true;
          process.nextTick(replay);
        }
        const destination = to ?? peer;
        const at = target === socket && destination !== undefined ? unsent.findIndex((d) => sameEndpoint(d.to, destination) && sameBytes(d.bytes, message)) : -1;
        if (at < 0) return target.send(message, to, done);
        unsent.splice(at, 1);
        process.nextTick(() => done(null));
      },
      local: () => target.local(),
      setMulticast: (ttl, interfaceAddress) => target.setMulticast(ttl, interfaceAddress),
      addMembership: (group, interfaceAddress) => target.addMembership?.(group, interfaceAddress),
      onMessage(next) {
        onMessage = next;
        listener = next;
      },
      onError(next) {
        onError = next;
        errorListener = next;
      },
      close: () => {
        state = 'closed';
        target.close();
      },
    };
  };

  const whenSent = (next: () => void): void => {
    if (sending === 0) next();
    else sentListeners.push(next);
  };
  if (sending === 0) settled();
  return { datagrams, localAddress: options.localAddress, adopt, whenSent, close };
}

/** A datagram as it left. */
interface OutgoingSent {
  readonly bytes: Uint8Array;
  readonly to: UdpEndpoint;
}

/**
 * An {@link OpenDatagramSocket} whose first IPv4 socket (not a listener's) is `early`'s, taken
 * over ({@link EarlyDatagrams.adopt}); every other socket, or all of them when there is nothing to
 * take, comes from `open`.
 *
 * @example
 * ```ts
 * const collect = createUdpCollect(adoptingOpen(early, openNodeDatagramSocket));
 * ```
 */
export function adoptingOpen(early: EarlyDatagrams | undefined, open: OpenDatagramSocket): OpenDatagramSocket {
  let offered = early;
  return (type, options) => {
    const candidate = offered;
    if (candidate !== undefined && type === 'udp4' && options?.reuseAddr !== true) {
      offered = undefined;
      const taken = candidate.adopt(() => open(type, options));
      if (taken !== undefined) return taken;
    }
    return open(type, options);
  };
}

function sameEndpoint(a: UdpEndpoint, b: UdpEndpoint): boolean {
  return a.port === b.port && a.address === b.address;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
