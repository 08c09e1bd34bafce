/**
 * Datagrams sent before the code that waits for their answers is loaded, so that the wait and
 * the loading overlap: the CLI sends `map --nat upnp`'s first M-SEARCH from `main.cjs` (a router
 * takes 50 ms or more to answer it; loading the command takes ~20 ms). The socket, and what it
 * received meanwhile, is then taken over by the first exchange that opens a socket through
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
  readonly message: Uint8Array;
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
   * made, whose first send of each of `datagrams` (same bytes, same destination) is the send
   * already made, and whose message listener gets what arrived meanwhile, in order, once the
   * bind has completed. A bind to another port or address moves everything to a socket from
   * `fresh`. Undefined when the socket failed, was closed, or was taken already.
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
  const raw = createSocket('udp4');
  raw.unref();
  const socket = adaptNodeSocket(raw);
  const buffered: Array<readonly [Uint8Array, UdpEndpoint]> = [];
  let listener: ((data: Uint8Array, remote: UdpEndpoint) => void) | undefined;
  let delivering = false;
  let errorListener: ((error: Error) => void) | undefined;
  let failed: Error | undefined;
  let bound = false;
  const whenBound: Array<() => void> = [];
  let state: 'offered' | 'taken' | 'closed' = 'offered';
  let sending = datagrams.length;
  const sentListeners: Array<() => void> = [];
  const settled = (): void => {
    sending = 0;
    for (const listener of sentListeners.splice(0)) listener();
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
  try {
    socket.bind(0, options.localAddress, () => {
      bound = true;
      for (const datagram of datagrams) {
        try {
          socket.send(datagram.message, datagram.to, oneSent);
        } catch {
          // no route: the taker sends it again (it was never matched as sent)
          oneSent();
        }
      }
      for (const next of whenBound.splice(0)) next();
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
    const unsent = [...datagrams];
    let target: DatagramSocket = socket;
    let onMessage: ((data: Uint8Array, remote: UdpEndpoint) => void) | undefined;
    let onError: ((error: Error) => void) | undefined;
    const replay = (): void => {
      delivering = true;
      for (const [data, remote] of buffered.splice(0)) listener?.(data, remote);
    };
    return {
      bind(port, address, done) {
        if (port !== 0 || address !== options.localAddress) {
          // Not the bind made: the exchange gets a socket of its own; the early answers are lost.
          socket.close();
          target = fresh();
          if (onMessage) target.onMessage(onMessage);
          if (onError) target.onError(onError);
          target.bind(port, address, done);
          return;
        }
        const go = (): void => {
          done();
          replay();
        };
        if (bound) process.nextTick(go);
        else whenBound.push(go);
      },
      connect: (port, address, done) => target.connect(port, address, done),
      send(message, to, done) {
        const at = target === socket && to !== undefined ? unsent.findIndex((d) => sameEndpoint(d.to, to) && sameBytes(d.message, message)) : -1;
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

  const whenSent = (listener: () => void): void => {
    if (sending === 0) listener();
    else sentListeners.push(listener);
  };
  if (sending === 0) settled();
  return { datagrams, localAddress: options.localAddress, adopt, whenSent, close };
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
