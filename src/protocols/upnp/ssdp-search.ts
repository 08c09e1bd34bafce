/**
 * SSDP search: M-SEARCH datagrams to a set of targets, repeated inside a window, and every
 * decodable answer — the SSDP codec over the transport's "collect answers for a window" UDP
 * primitive ({@link Transport.udpCollect}).
 *
 * @packageDocumentation
 */
import { catchError, filter, map, throwError, type Observable } from 'rxjs';
import { ProtocolError } from '../../errors.js';
import { nodeTransport, type Transport } from '../../transport/transport.js';
import type { TransportLogger } from '../../transport/logger.js';
import { decodeSsdpResponse, encodeMSearch, SSDP_MULTICAST_ADDRESS, SSDP_PORT, type SsdpResponse } from './ssdp.js';

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
  /** Where sends and answers are logged (`rxnat:upnp`). Default: silent. */
  readonly logger?: TransportLogger;
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
 * the multicast group) are ignored while another target works; it errors (a
 * {@link ProtocolError} of reason `socket`) only when the socket fails. Timers run on
 * `transport.scheduler`.
 *
 * @example
 * ```ts
 * ssdpSearch({ targets: [{ address: '127.0.0.1', port: 41900 }], searchTargets: IGD_SEARCH_TARGETS, windowMs: 1000 })
 *   .subscribe(({ message }) => console.log(message.location));
 * ```
 */
export function ssdpSearch(options: SsdpSearchOptions, transport: Transport = nodeTransport): Observable<SsdpAnswer> {
  const mxSeconds = options.mxSeconds ?? 1;
  const host = `${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}`;
  const datagrams = options.targets.flatMap((to) =>
    options.searchTargets.map((searchTarget) => ({ message: encodeMSearch({ searchTarget, mxSeconds, host }), to })),
  );
  return transport
    .udpCollect({
      protocol: 'upnp',
      datagrams,
      windowMs: options.windowMs,
      repeatIntervalMs: Math.max(100, options.repeatIntervalMs ?? Math.floor(options.windowMs / 4)),
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
      ...(options.multicastTtl !== undefined ? { multicastTtl: options.multicastTtl } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
      scheduler: transport.scheduler,
    })
    .pipe(
      map(({ message, remote }) => ({ message: decodeSsdpResponse(message, remote.address), from: remote })),
      filter((answer): answer is SsdpAnswer => !(answer.message instanceof ProtocolError)),
      // The socket's own failure, as before the search moved out of the transport.
      catchError((error: unknown) => throwError(() => new ProtocolError('ssdp', 'socket', `SSDP socket failed: ${socketMessage(error)}`))),
    );
}

function socketMessage(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}
