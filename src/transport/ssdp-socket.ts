/**
 * SSDP search over UDP: sends M-SEARCH datagrams to a set of targets, repeatedly inside a
 * window, and emits every decodable answer.
 *
 * @packageDocumentation
 */
import { createSocket, type Socket } from 'node:dgram';
import { Observable } from 'rxjs';
import { decodeSsdpResponse, encodeMSearch, SSDP_MULTICAST_ADDRESS, SSDP_PORT, type SsdpResponse } from '../protocols/upnp/ssdp.js';
import { ProtocolError } from '../errors.js';

/**
 * Where an M-SEARCH is sent.
 *
 * @example
 * ```ts
 * const target: SsdpTarget = { address: '127.0.0.1', port: 41900 };
 * ```
 */
export interface SsdpTarget {
  readonly address: string;
  readonly port: number;
}

/**
 * The default multicast target, `239.255.255.250:1900`.
 *
 * @example
 * ```ts
 * ssdpSearch({ targets: [SSDP_MULTICAST_TARGET], searchTargets, windowMs: 2000 });
 * ```
 */
export const SSDP_MULTICAST_TARGET: SsdpTarget = Object.freeze({ address: SSDP_MULTICAST_ADDRESS, port: SSDP_PORT });

/**
 * Options of {@link ssdpSearch}.
 *
 * @example
 * ```ts
 * const options: SsdpSearchOptions = { targets: [{ address: '127.0.0.1', port: 41900 }],
 *   searchTargets: ['urn:schemas-upnp-org:device:InternetGatewayDevice:2'], windowMs: 1000 };
 * ```
 */
export interface SsdpSearchOptions {
  /** Where to send (multicast and/or unicast). The socket never joins a multicast group. */
  readonly targets: readonly SsdpTarget[];
  /** The ST values searched, one datagram each per target per round. */
  readonly searchTargets: readonly string[];
  /** How long to listen, in ms; the stream completes then. */
  readonly windowMs: number;
  /** Delay between rounds of M-SEARCH inside the window, in ms. Default `windowMs / 4`, at least 100. */
  readonly repeatIntervalMs?: number;
  /** MX header, in seconds. Default 1. */
  readonly mxSeconds?: number;
  /** Local address to bind. Default all addresses. */
  readonly localAddress?: string;
  /** Multicast TTL for multicast targets. Default 2 (as miniupnpc). */
  readonly multicastTtl?: number;
}

/**
 * An answer received, with the address and port that sent it (any source port is accepted).
 *
 * @example
 * ```ts
 * ssdpSearch(options).subscribe(({ message, from }) => console.log(from.address, message.location));
 * ```
 */
export interface SsdpAnswer {
  readonly message: SsdpResponse;
  readonly from: SsdpTarget;
}

/**
 * Searches with SSDP: when subscribed, binds a UDP socket on an ephemeral port, sends one
 * M-SEARCH per search target to every target, repeats every `repeatIntervalMs` inside
 * `windowMs`, emits each decodable answer (malformed ones are dropped), and completes at the end
 * of the window. Unsubscribing closes the socket at once. Send failures to a target (no route to
 * the multicast group) are ignored while another target works; it errors only when the socket
 * cannot be bound.
 *
 * @example
 * ```ts
 * ssdpSearch({ targets: [{ address: '127.0.0.1', port: 41900 }], searchTargets: IGD_SEARCH_TARGETS, windowMs: 1000 })
 *   .subscribe(({ message }) => console.log(message.location));
 * ```
 */
export function ssdpSearch(options: SsdpSearchOptions): Observable<SsdpAnswer> {
  return new Observable<SsdpAnswer>((subscriber) => {
    const socket: Socket = createSocket({ type: 'udp4', reuseAddr: false });
    const timers: NodeJS.Timeout[] = [];
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      timers.forEach(clearTimeout);
      try {
        socket.close();
      } catch {
        // already closed
      }
    };
    socket.on('error', (error) => {
      close();
      subscriber.error(new ProtocolError('ssdp', 'socket', `SSDP socket failed: ${error.message}`));
    });
    socket.on('message', (msg, rinfo) => {
      const message = decodeSsdpResponse(msg, rinfo.address);
      if (message instanceof ProtocolError) return;
      subscriber.next({ message, from: { address: rinfo.address, port: rinfo.port } });
    });
    const interval = Math.max(100, options.repeatIntervalMs ?? Math.floor(options.windowMs / 4));
    const round = (): void => {
      if (closed) return;
      for (const target of options.targets) {
        const datagrams = options.searchTargets.map((st) =>
          encodeMSearch({ searchTarget: st, mxSeconds: options.mxSeconds ?? 1, host: `${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}` }),
        );
        for (const datagram of datagrams) {
          socket.send(datagram, target.port, target.address, () => {
            // A failed send (no multicast route, unreachable unicast) only loses that datagram.
          });
        }
      }
    };
    socket.bind({ port: 0, exclusive: true, ...(options.localAddress !== undefined ? { address: options.localAddress } : {}) }, () => {
      if (closed) return;
      if (options.targets.some((t) => isMulticast(t.address))) {
        try {
          socket.setMulticastTTL(options.multicastTtl ?? 2);
          if (options.localAddress !== undefined) socket.setMulticastInterface(options.localAddress);
        } catch {
          // keep the defaults
        }
      }
      round();
      for (let at = interval; at < options.windowMs; at += interval) timers.push(setTimeout(round, at));
      timers.push(
        setTimeout(() => {
          close();
          subscriber.complete();
        }, options.windowMs),
      );
    });
    return close;
  });
}

function isMulticast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}
