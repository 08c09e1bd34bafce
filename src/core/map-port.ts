import {
  asyncScheduler,
  catchError,
  concat,
  defer,
  distinctUntilChanged,
  EMPTY,
  ignoreElements,
  isObservable,
  NEVER,
  Observable,
  of,
  ReplaySubject,
  startWith,
  Subscription,
  switchMap,
  take,
  takeUntil,
  tap,
  timeout,
  timer,
  type SchedulerLike,
} from 'rxjs';
import { GatewayLostError, GatewayTimeoutError, GatewayUnreachableError, InvalidMappingRequestError } from '../errors.js';
import { classifyIpv4 } from './address.js';
import { backoffDelayMs, type RetryOptions } from './backoff.js';
import { acquireGatewayContext, type GatewayContextOptions } from './gateway-context.js';
import { debugLogger, type Logger } from './logger.js';
import type { MappingGrant, MappingProtocol, MappingRequest, Nat } from './nat.js';
import { resolveMappingRequest, type ResolvedMappingRequest } from './validate.js';

/**
 * Where a mapping stands:
 * - `mapping`: the first add is under way (or the gateway is being discovered);
 * - `mapped`: the gateway granted the mapping and it is being renewed;
 * - `degraded`: renewals fail, but the last grant has not expired yet: the port still works;
 * - `unmapped`: no mapping is established (the lease ran out, or it could not be made); still retrying.
 */
export type MappingStatus = 'mapping' | 'mapped' | 'degraded' | 'unmapped';

/**
 * One state of a mapping stream. A new state is emitted only when something in it changed.
 *
 * @example
 * ```ts
 * mapPort(nat, { protocol: 'tcp', internalPort: 8080 }).subscribe((s) =>
 *   console.log(s.status, `${s.externalIp ?? '-'}:${s.externalPort}`));
 * ```
 */
export interface MappingState {
  readonly status: MappingStatus;
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** The external port granted; 0 while no mapping is established (go-libp2p-nat's convention). */
  readonly externalPort: number;
  /** The gateway's external address; `null` while no mapping is established. */
  readonly externalIp: string | null;
  /** The lease the gateway granted in seconds (0: permanent); `null` while no mapping is established. */
  readonly lifetimeSeconds: number | null;
  /** The NAT's name, for example `pmp(192.168.1.1)`; `null` before a gateway is known. */
  readonly backend: string | null;
  /** True when the external address is not public (private, CGNAT): another NAT sits upstream, the port is not reachable from the internet as it stands. */
  readonly doubleNat: boolean;
  /** How many times the mapping was renewed on this gateway. */
  readonly renewals: number;
  /** The last error, while `degraded` or `unmapped`; `null` once mapped. */
  readonly error: Error | null;
}

/**
 * Options of {@link mapPort}. Every one has a default.
 *
 * @example
 * ```ts
 * mapPort(nat, request, { externalIpCacheMs: 30_000, retry: { maxDelayMs: 10_000 } });
 * ```
 */
export interface MapPortOptions {
  /** Renew when this fraction of the granted lease has passed. Default 1/3 (go-libp2p-nat). */
  readonly renewFraction?: number;
  /** How long the gateway's external address is trusted before it is asked again. Default 15 000 ms (go-libp2p-nat's CacheTime). */
  readonly externalIpCacheMs?: number;
  /** Backoff for failed adds and renewals, and for rediscovery. */
  readonly retry?: RetryOptions;
  /** After this many "connection refused" in a row the gateway is taken as lost and rediscovered. Default 3 (go-libp2p-nat). */
  readonly maxConsecutiveUnreachable?: number;
  /** Bound on the delete at teardown (and on an add still in flight then). Default 10 000 ms. */
  readonly teardownTimeoutMs?: number;
  /**
   * A graceful stop: when it emits, the mapping is deleted, a last `unmapped` state is emitted
   * and the stream completes. (Unsubscribing also deletes, but nobody can wait for that.)
   */
  readonly stop?: Observable<unknown>;
  /** Where to log; default {@link debugLogger} (`DEBUG=rxnat:*`). */
  readonly logger?: Logger;
  /** Source of jitter in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /** Scheduler for every timer; default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
}

interface Settings {
  readonly renewFraction: number;
  readonly retry: RetryOptions;
  readonly maxConsecutiveUnreachable: number;
  readonly teardownTimeoutMs: number;
  readonly logger: Logger;
  readonly random: () => number;
  readonly scheduler: SchedulerLike;
}

/**
 * Maps a port on a NAT gateway, as a cold Observable of {@link MappingState}s.
 *
 * - Nothing happens before subscribe; every subscription adds its own mapping.
 * - The mapping is renewed at a third of the lease the gateway granted, asking for the
 *   external port granted before (sticky). The external address is watched (every 15 s, shared
 *   by all streams on the gateway); a change is emitted at once and triggers a re-add.
 * - Gateway and network errors never end the stream: it retries with capped exponential backoff
 *   and jitter, reports `degraded` while the last grant is still valid and `unmapped` after.
 *   Only an invalid request errors, at subscribe, with {@link InvalidMappingRequestError}.
 * - Unsubscribing deletes the mapping exactly once, also while the add is in flight (the delete
 *   follows the add's answer). A failed delete is logged, never thrown.
 * - Given an Observable of NATs, the mapping follows it: a new NAT replaces the old one (the old
 *   mapping is deleted best-effort). A gateway that keeps refusing connections is rediscovered by
 *   subscribing to the source again.
 *
 * @example
 * ```ts
 * import { extIp, mapPort } from 'rxnat';
 * const subscription = mapPort(extIp('203.0.113.7'), { protocol: 'tcp', internalPort: 8080 })
 *   .subscribe((state) => console.log(state.status, state.externalIp, state.externalPort));
 * // later: subscription.unsubscribe() deletes the mapping
 * ```
 */
export function mapPort(nat: Nat | Observable<Nat>, request: MappingRequest, options: MapPortOptions = {}): Observable<MappingState> {
  return defer(() => {
    const resolved = resolveMappingRequest(request);
    const settings: Settings = {
      renewFraction: options.renewFraction ?? 1 / 3,
      retry: options.retry ?? {},
      maxConsecutiveUnreachable: options.maxConsecutiveUnreachable ?? 3,
      teardownTimeoutMs: options.teardownTimeoutMs ?? 10_000,
      logger: options.logger ?? debugLogger,
      random: options.random ?? Math.random,
      scheduler: options.scheduler ?? asyncScheduler,
    };
    const externalIpCacheMs = options.externalIpCacheMs ?? 15_000;
    const nat$ = isObservable(nat) ? nat : of(nat);
    // The stop notifier is watched for the stream's whole life (not only while a session listens),
    // so a stop sent between two sessions, e.g. in reaction to an `unmapped` state, is not lost.
    const stopped = new ReplaySubject<void>(1);
    const stop$: Observable<unknown> = options.stop ? stopped : NEVER;
    const watchStop = (): Subscription | undefined => options.stop?.pipe(take(1)).subscribe(() => stopped.next());
    let failures = 0;
    let backend: string | null = null;

    const run = (): Observable<MappingState> =>
      nat$.pipe(
        takeUntil(stop$),
        switchMap((current) =>
          mappingSession(current, resolved, { externalIpCacheMs, logger: settings.logger, scheduler: options.scheduler }, settings, stop$),
        ),
        tap((state) => {
          backend = state.backend;
          if (state.status === 'mapped') failures = 0;
        }),
        catchError((error: unknown) => {
          if (error instanceof InvalidMappingRequestError) throw error;
          failures++;
          const delay = backoffDelayMs(failures, settings.retry, settings.random);
          settings.logger.debug('rxnat:map', `no gateway for ${describe(resolved)}; retrying in ${delay} ms`, { error });
          return concat(
            of(unestablished(resolved, 'unmapped', backend, toError(error))),
            timer(delay, settings.scheduler).pipe(takeUntil(stop$), switchMap(run)),
          );
        }),
      );

    // A NAT given as such answers at once; a source (discovery) gets a first state while it searches.
    const states$ = isObservable(nat) ? run().pipe(startWith(unestablished(resolved, 'mapping', null, null))) : run();
    return new Observable<MappingState>((subscriber) => {
      const stopping = watchStop();
      const subscription = states$.pipe(distinctUntilChanged(sameState)).subscribe(subscriber);
      return () => {
        subscription.unsubscribe();
        stopping?.unsubscribe();
      };
    });
  });
}

/** One gateway's mapping: add, renew, watch the external address, delete on teardown. */
function mappingSession(
  nat: Nat,
  request: ResolvedMappingRequest,
  contextOptions: GatewayContextOptions,
  settings: Settings,
  stop$: Observable<unknown>,
): Observable<MappingState> {
  return new Observable<MappingState>((subscriber) => {
    // Held until the session's last request (the delete at teardown) is done.
    const { context, release } = acquireGatewayContext(nat, contextOptions);
    const { logger, scheduler } = settings;
    const log = (message: string, data?: Record<string, unknown>): void =>
      logger.debug('rxnat:map', `${nat.name} ${describe(request)}: ${message}`, data);
    const now = (): number => scheduler.now();

    let state = unestablished(request, 'mapping', nat.name, null);
    const emit = (patch: Partial<MappingState>): void => {
      state = { ...state, ...patch };
      subscriber.next(state);
    };

    let grant: MappingGrant | null = null;
    let leaseEndsAtMs = 0;
    let externalIp: string | null = null;
    let failures = 0;
    let unreachable = 0;
    let renewals = 0;
    let add: Subscription | null = null;
    let addStarted = false;
    let addAgain = false;
    let nextAttempt: Subscription | null = null;
    let expiry: Subscription | null = null;
    let inFlightBound: Subscription | null = null;
    let closing = false;
    let finished = false;
    const watchers = new Subscription();

    const schedule = (delayMs: number): void => {
      nextAttempt?.unsubscribe();
      nextAttempt = null;
      // The subscriber may have unsubscribed (or stopped) while the state emitted just before
      // this call was delivered: no timer may outlive the session.
      if (closing) return;
      nextAttempt = timer(clampDelay(delayMs), scheduler).subscribe(() => {
        nextAttempt = null;
        attempt();
      });
    };

    /** A delete that nobody waits for: bounded, its failure logged. */
    const deletion = (target: MappingGrant): Observable<never> =>
      context.limit(nat.deleteMapping(target)).pipe(
        timeout({ first: settings.teardownTimeoutMs, scheduler }),
        tap({ complete: () => log(`deleted external port ${target.externalPort}`) }),
        ignoreElements(),
        catchError((error: unknown) => {
          log(`delete of external port ${target.externalPort} failed`, { error });
          return EMPTY;
        }),
      );

    const attempt = (): void => {
      if (closing) return;
      if (add) {
        addAgain = true;
        return;
      }
      nextAttempt?.unsubscribe();
      nextAttempt = null;
      const previous = grant;
      const externalPort = previous?.externalPort ?? request.externalPort;
      log(previous ? `renewing external port ${externalPort}` : `adding, asking for external port ${externalPort}`);
      addStarted = false;
      let done = false;
      const call = context.limit(
        defer(() => {
          addStarted = true;
          return nat.addMapping({ ...request, externalPort, ...(previous ? { previous } : {}) });
        }),
      );
      const subscription = call.pipe(take(1)).subscribe({
        next: (granted) => {
          done = true;
          add = null;
          onGrant(granted, previous);
        },
        error: (error: unknown) => {
          done = true;
          add = null;
          onFailure(toError(error), externalPort);
        },
        complete: () => {
          if (!done) {
            done = true;
            add = null;
            onFailure(new Error(`${nat.name} answered the add with nothing`), externalPort);
          }
        },
      });
      if (!done) add = subscription;
    };

    const onGrant = (granted: MappingGrant, previous: MappingGrant | null): void => {
      failures = 0;
      unreachable = 0;
      if (closing) {
        // Unsubscribed (or stopped) while the add was in flight: the delete follows the answer.
        log(`add answered after teardown; deleting external port ${granted.externalPort}`);
        finishClosing(granted);
        return;
      }
      grant = granted;
      if (previous) renewals++;
      leaseEndsAtMs = granted.lifetimeSeconds === 0 ? Infinity : now() + granted.lifetimeSeconds * 1000;
      expiry?.unsubscribe();
      expiry = null;
      if (granted.externalIp) externalIp = granted.externalIp;
      log(`granted external port ${granted.externalPort} for ${granted.lifetimeSeconds} s`);
      emit({
        status: 'mapped',
        externalPort: granted.externalPort,
        externalIp,
        lifetimeSeconds: granted.lifetimeSeconds,
        doubleNat: externalIp !== null && classifyIpv4(externalIp) !== 'public',
        renewals,
        error: null,
      });
      if (addAgain) {
        addAgain = false;
        attempt();
        return;
      }
      // A permanent lease (0) is still re-added now and then: routers forget, and it proves the gateway is there.
      const leaseMs = (granted.lifetimeSeconds || request.lifetimeSeconds || 60) * 1000;
      schedule(leaseMs * settings.renewFraction);
    };

    const onFailure = (error: Error, askedPort: number): void => {
      if (closing) {
        // An add that timed out may still have been made: delete what was asked for.
        finishClosing(error instanceof GatewayTimeoutError ? { ...request, externalPort: askedPort, lifetimeSeconds: 0 } : null);
        return;
      }
      failures++;
      // Only refusals and missing routes count: a reset comes from a flaky gateway that is still there.
      unreachable = error instanceof GatewayUnreachableError && error.gatewayGone ? unreachable + 1 : 0;
      if (unreachable >= settings.maxConsecutiveUnreachable) {
        log('gateway keeps refusing connections; rediscovering', { error });
        subscriber.error(new GatewayLostError(nat.name, error));
        return;
      }
      const retryAfterMs = ((error as { retryAfterSeconds?: number }).retryAfterSeconds ?? 0) * 1000;
      const delay = Math.max(backoffDelayMs(failures, settings.retry, settings.random), retryAfterMs);
      log(`add failed (${failures} in a row); retrying in ${delay} ms`, { error });
      if (grant && now() < leaseEndsAtMs) {
        emit({ status: 'degraded', error });
        if (!expiry && leaseEndsAtMs !== Infinity && !closing) {
          expiry = timer(clampDelay(leaseEndsAtMs - now()), scheduler).subscribe(() => {
            expiry = null;
            log('lease expired while renewals failed');
            emit(unmappedPatch(state.error));
          });
        }
      } else {
        emit(unmappedPatch(error));
      }
      addAgain = false;
      schedule(delay);
    };

    const unmappedPatch = (error: Error | null): Partial<MappingState> => ({
      status: 'unmapped',
      externalPort: 0,
      externalIp: null,
      lifetimeSeconds: null,
      doubleNat: false,
      error,
    });

    /** Ends the session: cancels timers and watchers, deletes `target` if any, completes on stop. */
    let stopping = false;
    const finishClosing = (target: MappingGrant | null): void => {
      inFlightBound?.unsubscribe();
      const deletion$ = target ? deletion(target) : EMPTY;
      if (!stopping) {
        deletion$.subscribe({ complete: release });
        return;
      }
      deletion$.subscribe({
        complete: () => {
          release();
          finished = true;
          emit(unmappedPatch(null));
          subscriber.complete();
        },
      });
    };

    const close = (): void => {
      closing = true;
      watchers.unsubscribe();
      nextAttempt?.unsubscribe();
      expiry?.unsubscribe();
      if (add && !addStarted) {
        // Still queued behind other requests to this gateway: nothing was sent, nothing to delete.
        add.unsubscribe();
        add = null;
        finishClosing(null);
      } else if (add) {
        // In flight: keep it, the delete follows its answer; but not for longer than the bound.
        const inFlight = add;
        inFlightBound = timer(settings.teardownTimeoutMs, scheduler).subscribe(() => {
          if (!inFlight.closed) {
            inFlight.unsubscribe();
            log('add still unanswered at the teardown bound; deleting what was asked for');
            finishClosing({ ...request, externalPort: grant?.externalPort ?? request.externalPort, lifetimeSeconds: 0 });
          }
        });
      } else {
        finishClosing(grant);
      }
    };

    subscriber.next(state);
    watchers.add(
      stop$.subscribe(() => {
        log('stopping');
        stopping = true;
        close();
      }),
    );
    if (!closing) {
      watchers.add(
        context.externalIp$.subscribe((ip) => {
          const changed = externalIp !== null && ip !== externalIp;
          externalIp = ip;
          if (state.status === 'mapped' || state.status === 'degraded') {
            emit({ externalIp: ip, doubleNat: classifyIpv4(ip) !== 'public' });
          }
          if (changed && grant) {
            log(`external address changed to ${ip}; re-adding`);
            attempt();
          }
        }),
      );
      if (nat.resets$) {
        watchers.add(
          nat.resets$.subscribe(() => {
            log('gateway lost its mappings (epoch reset); re-adding at once');
            attempt();
          }),
        );
      }
      attempt();
    }

    return () => {
      if (finished || closing) return;
      log('unsubscribed');
      close();
    };
  });
}

/** Longest delay a timer can wait: Node fires a longer one after 1 ms (a 2^32-1 s lease would renew in a loop). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

function clampDelay(delayMs: number): number {
  return Math.min(MAX_TIMER_DELAY_MS, Math.max(0, delayMs));
}

function unestablished(request: ResolvedMappingRequest, status: MappingStatus, backend: string | null, error: Error | null): MappingState {
  return {
    status,
    protocol: request.protocol,
    internalPort: request.internalPort,
    externalPort: 0,
    externalIp: null,
    lifetimeSeconds: null,
    backend,
    doubleNat: false,
    renewals: 0,
    error,
  };
}

function sameState(a: MappingState, b: MappingState): boolean {
  return (Object.keys(a) as Array<keyof MappingState>).every((key) => a[key] === b[key]);
}

function describe(request: ResolvedMappingRequest): string {
  return `${request.protocol}/${request.internalPort}`;
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
