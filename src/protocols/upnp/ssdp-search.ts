/**
 * SSDP search: M-SEARCH datagrams to a set of targets, repeated inside a window, and every
 * decodable answer — the SSDP codec over the transport's "collect answers for a window" UDP
 * primitive ({@link Transport.udpCollect}).
 *
 * @packageDocumentation
 */
import { catchError, defer, EMPTY, filter, map, merge, NEVER, race, switchMap, take, throwError, timer, type Observable } from 'rxjs';
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
  /**
   * A first, small search sent at once: one M-SEARCH per search target to each of these targets
   * (once; the rounds repeat them). With a lead, the rounds of `targets` x `searchTargets`
   * start only `widenAfterMs` later, or as soon as `widen` emits, or never if the stream ends
   * first. A router is a small single-threaded CPU: every M-SEARCH it must answer delays what
   * follows (the description fetch, a mapping request of another protocol).
   */
  readonly lead?: SsdpLead;
  /** With `lead`: when the rounds start at the latest, in ms from subscription. Default `repeatIntervalMs`. */
  readonly widenAfterMs?: number;
  /** With `lead`: the rounds start as soon as this emits (for example when what the lead found failed). */
  readonly widen?: Observable<unknown>;
}

/**
 * The first search of {@link SsdpSearchOptions.lead}: where, and which search targets.
 *
 * @example
 * ```ts
 * const lead: SsdpLead = { targets: [{ address: '192.168.1.1', port: 1900 }], searchTargets: [IGD_LEAD_SEARCH_TARGETS[0]] };
 * ```
 */
export interface SsdpLead {
  readonly targets: readonly SsdpTarget[];
  readonly searchTargets: readonly string[];
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
 * of the window. With a `lead`, only the lead's datagrams go out at once, and the rounds start
 * later (see {@link SsdpSearchOptions.lead}); each part has its own socket. Unsubscribing closes
 * the sockets at once and sends nothing more. Send failures to a target (no route to
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
  const repeatIntervalMs = Math.max(100, options.repeatIntervalMs ?? Math.floor(options.windowMs / 4));
  const lead = options.lead;
  if (lead === undefined || lead.targets.length === 0 || lead.searchTargets.length === 0) {
    return collect(options, transport, options.targets, options.searchTargets, options.windowMs, repeatIntervalMs);
  }
  return defer(() => {
    const scheduler = transport.scheduler;
    const start = scheduler.now();
    const widenAfterMs = Math.max(0, options.widenAfterMs ?? repeatIntervalMs);
    // The lead: once, listening for the whole window.
    const first = collect(options, transport, lead.targets, lead.searchTargets, options.windowMs, undefined);
    const rounds =
      widenAfterMs >= options.windowMs && options.widen === undefined
        ? EMPTY
        : race(widenAfterMs < options.windowMs ? timer(widenAfterMs, scheduler) : NEVER, options.widen ?? NEVER).pipe(
            take(1),
            switchMap(() => {
              const left = options.windowMs - (scheduler.now() - start);
              return left > 0 ? collect(options, transport, options.targets, options.searchTargets, left, repeatIntervalMs) : EMPTY;
            }),
          );
    return merge(first, rounds);
  });
}

/** One socket: `targets` x `searchTargets` sent at once and every `repeatIntervalMs` (if given), answers for `windowMs`. */
function collect(
  options: SsdpSearchOptions,
  transport: Transport,
  targets: readonly SsdpTarget[],
  searchTargets: readonly string[],
  windowMs: number,
  repeatIntervalMs: number | undefined,
): Observable<SsdpAnswer> {
  const mxSeconds = options.mxSeconds ?? 1;
  const host = `${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}`;
  const datagrams = targets.flatMap((to) => searchTargets.map((searchTarget) => ({ message: encodeMSearch({ searchTarget, mxSeconds, host }), to })));
  return transport
    .udpCollect({
      protocol: 'upnp',
      datagrams,
      windowMs,
      ...(repeatIntervalMs !== undefined ? { repeatIntervalMs } : {}),
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
