import { asyncScheduler, debounce, defer, distinctUntilChanged, filter, map, type Observable, of, retry, type SchedulerLike, switchMap, tap, timer } from 'rxjs';
import { backoffDelayMs, type RetryOptions } from './core/backoff.js';
import { gatewayKey } from './core/gateway-context.js';
import { debugLogger, type Logger } from './core/logger.js';
import type { Nat } from './core/nat.js';
import { InvalidOptionError } from './errors.js';
import { networkWatch, snapshotKey, type NetworkSnapshot, type NetworkWatchOptions } from './transport/network-watch.js';

/**
 * Options of {@link followNetwork}.
 *
 * @example
 * ```ts
 * followNetwork(() => discoverNat(), { settleMs: 1000, watchOptions: { periodMs: 1000 } });
 * ```
 */
export interface FollowNetworkOptions {
  /** The network changes to follow. Default `networkWatch({ scheduler, ...watchOptions })`. */
  readonly watch?: Observable<NetworkSnapshot>;
  /** Options of the default watch (poll periods, `ipv6`); ignored with `watch`. */
  readonly watchOptions?: Omit<NetworkWatchOptions, 'scheduler'>;
  /**
   * How long the network must stay the same after a change before it is rediscovered, so that a
   * route that flaps is rediscovered once, for where it settles. The first snapshot is
   * discovered at once. Default 500 ms.
   */
  readonly settleMs?: number;
  /** The backoff between rediscoveries that fail after a change (see below). Default as `mapPort`'s: 1 s doubling to 60 s, ±20 %. */
  readonly retry?: RetryOptions;
  /** Runs the settle and retry timers (and the default watch's). Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** A number in [0, 1) for the backoff's jitter. Default `Math.random`. */
  readonly random?: () => number;
  readonly logger?: Logger;
}

/**
 * The NAT of the network this machine is on, followed as the network changes: a cold Observable
 * that discovers at once on subscribe, and again each time the default route, its interface or
 * the local address facing the router changes (with the watch's `ipv6`, also the IPv6 default
 * router or the global IPv6 addresses of its interface; in general, each new
 * {@link snapshotKey}), after the network has settled for `settleMs`, and emits each NAT found
 * unless it is the one emitted last (the same gateway, by kind, name and endpoint, seen from
 * the same local addresses: the IPv4 one and, when watched, the IPv6 ones). A change while a
 * discovery is under way abandons it for the new network.
 *
 * Given to {@link mapPort}, the mapping follows the machine: each NAT emitted replaces the last
 * one, whose mapping is deleted best-effort, and the mapping is added on the new one.
 *
 * Failures: when the first discovery fails, the stream errors with that failure (as
 * `discoverNat()` does; `mapPort` then reports `unmapped` and subscribes again with backoff,
 * which reads the network anew). A discovery that fails after a NAT has been emitted is retried
 * with backoff (`retry`) until one succeeds or the network changes again; the last NAT stays
 * the current one meanwhile. Never completes while the watch runs. Options out of range error
 * at subscribe ({@link InvalidOptionError}; `mapPort` ends with it).
 *
 * `discover` receives the network it is asked for: pass its router to the backends
 * (`gateway: snapshot.defaultGateway?.gateway`), so that they do not look the route up again.
 *
 * @example
 * ```ts
 * import { discoverNat, followNetwork, mapPort } from 'rxnat';
 * const nat$ = followNetwork((snapshot) => discoverNat({ gateway: snapshot.defaultGateway?.gateway }));
 * mapPort(nat$, { protocol: 'udp', internalPort: 4001 }).subscribe((state) => console.log(state.status, state.backend));
 * // moving from Ethernet to Wi-Fi: the mapping is deleted on the old router and added on the new one
 * ```
 */
export function followNetwork(discover: (snapshot: NetworkSnapshot) => Observable<Nat>, options: FollowNetworkOptions = {}): Observable<Nat> {
  return defer(() => {
    const scheduler = options.scheduler ?? asyncScheduler;
    const settleMs = options.settleMs ?? 500;
    if (!Number.isFinite(settleMs) || settleMs < 0) throw new InvalidOptionError('settleMs', `settleMs must be a number of milliseconds >= 0 (got ${String(settleMs)})`);
    if (typeof discover !== 'function') throw new InvalidOptionError('discover', 'followNetwork needs a function from a network snapshot to an Observable of NATs');
    const logger = options.logger ?? debugLogger;
    const random = options.random ?? Math.random;
    const retryOptions = options.retry ?? {};
    const watch = options.watch ?? networkWatch({ ...options.watchOptions, scheduler });
    let first = true;
    let emitted = false;
    let current: string | null = null;
    const discoverOn = (snapshot: NetworkSnapshot): Observable<{ readonly nat: Nat; readonly key: string }> =>
      defer(() => {
        logger.debug('rxnat:discover', `discovering on ${snapshotKey(snapshot)}`, { snapshot });
        return discover(snapshot);
      }).pipe(
        retry({
          delay: (error: unknown, attempt: number) => {
            // Before any NAT the caller decides (mapPort subscribes again with its own backoff).
            if (!emitted) throw error;
            const delay = backoffDelayMs(attempt, retryOptions, random);
            logger.debug('rxnat:discover', `no gateway on ${snapshotKey(snapshot)}; retrying in ${delay} ms`, { error });
            return timer(delay, scheduler);
          },
        }),
        map((nat) => ({ nat, key: `${gatewayKey(nat)} from ${localKey(snapshot)}` })),
      );
    return watch.pipe(
      debounce(() => {
        if (!first) return timer(settleMs, scheduler);
        first = false;
        return of(0);
      }),
      distinctUntilChanged((a, b) => snapshotKey(a) === snapshotKey(b)),
      switchMap(discoverOn),
      filter(({ key }) => key !== current),
      tap(({ key }) => {
        current = key;
        emitted = true;
      }),
      map(({ nat }) => nat),
    );
  });
}

/**
 * The local addresses a mapping made on `snapshot`'s network points at: the IPv4 one facing the
 * router and, when IPv6 is watched, the global IPv6 ones (a new prefix: the same gateway must
 * map again, from the new address).
 */
function localKey(snapshot: NetworkSnapshot): string {
  const ipv4 = snapshot.localAddress ?? '-';
  return snapshot.ipv6Addresses === undefined ? ipv4 : `${ipv4} ${snapshot.ipv6Addresses.join(',') || '-'}`;
}
