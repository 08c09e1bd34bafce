import { asyncScheduler, BehaviorSubject, defer, isObservable, of, shareReplay, Subject, timer, type Observable, type Subscription } from 'rxjs';
import { GatewayLostError, InvalidOptionError, NoMappingError, UnconfirmedDeleteError, type UnconfirmedDelete } from '../errors.js';
import { mapPort, type MappingState, type MapPortOptions } from '../core/map-port.js';
import { sameState, unestablished } from '../core/mapping-state.js';
import type { MappingProtocol, Nat } from '../core/nat.js';
import { DEFAULT_LIFETIME_SECONDS } from '../core/validate.js';
import { latestValues } from './latest-iterator.js';
import { CloseTimeoutError, defaultCloseTimeoutMs, PendingDelete } from './pending-delete.js';

export { CloseTimeoutError } from './pending-delete.js';


/**
 * One mapping of a {@link NatService}: go-libp2p-nat's `Mapping`, for code that is not reactive.
 * Also async-iterable: `for await (const state of mapping)` goes through its states, keeping only
 * the latest; leaving the loop closes the mapping.
 *
 * @example
 * ```ts
 * const mapping = service.newMapping('tcp', 4001);
 * mapping.state$.subscribe((s) => console.log(s.status));
 * // later
 * const { ip, port } = mapping.externalAddr(); // throws NoMappingError until mapped
 * try {
 *   await mapping.close();
 * } catch (e) {
 *   if (e instanceof UnconfirmedDeleteError) console.error(e.message); // may stay mapped until its lease ends
 * }
 * ```
 */
export interface NatMapping extends AsyncIterable<MappingState> {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** The external port, 0 while the mapping is not established. */
  readonly externalPort: number;
  /**
   * The latest state. Once closed, an `unmapped` state whose `error` is `null` or the
   * {@link UnconfirmedDeleteError} the close rejected with; after an invalid request or option,
   * an `unmapped` state carrying that error.
   */
  readonly state: MappingState;
  /**
   * Every state from now on, starting with the latest. Ends with the last `unmapped` state and
   * completes when the mapping is closed (subscribed after that: that last state, then
   * complete); errors with an invalid request or option.
   */
  readonly state$: Observable<MappingState>;
  /**
   * Settles once the mapping is closed, whoever closed it ({@link NatMapping.close}, the
   * `signal` given to {@link NatService.newMapping}, the service's close or signal), exactly as
   * `close()` does: resolves when the gateway confirmed the delete (or there was nothing to
   * delete), rejects with an {@link UnconfirmedDeleteError} otherwise. Never an unhandled
   * rejection: where nobody waits for it, an unconfirmed delete after an abort is only seen
   * here and on the last state.
   *
   * @example
   * ```ts
   * const controller = new AbortController();
   * const mapping = service.newMapping('udp', 4001, { signal: controller.signal });
   * controller.abort(); // deletes; throws nothing
   * await mapping.closed.catch((e: unknown) => console.error('may remain until its lease ends:', e));
   * ```
   */
  readonly closed: Promise<void>;
  /** The external address and port; throws {@link NoMappingError} while the mapping is not established. */
  externalAddr(): { readonly ip: string; readonly port: number };
  /**
   * Deletes the mapping (a graceful stop of its stream). Resolves once the gateway confirmed
   * every delete, or when there was nothing to delete (no gateway found yet, or the stream
   * ended with an invalid request or option). Rejects with an {@link UnconfirmedDeleteError}
   * when some delete was not confirmed: the gateway refused it or did not answer within
   * `teardownTimeoutMs` (the core's answer, passed on as is), or `closeTimeoutMs` passed
   * before the stream ended (then one entry names the mapping, with the latest state's
   * external port, or the last one granted, and a {@link CloseTimeoutError}). Each entry says
   * when the router drops the mapping by itself at the latest. Calling it again returns the
   * same promise; after an abort it settles as {@link NatMapping.closed}.
   */
  close(): Promise<void>;
  /**
   * The mapping's states for `for await`, starting with the latest. **Keeps only the latest
   * state**: a consumer slower than the mapping skips the states superseded while it was busy
   * (memory stays one state), but always gets the last one before the end. The loop ends after
   * the last `unmapped` state once the mapping is closed by anything else (its `signal`,
   * `close()`, the service); that state's `error` is `null` or an {@link UnconfirmedDeleteError}.
   * Leaving the loop (`break`, `return`, `throw`: the iterator's `return()`) closes the mapping
   * and waits for the delete; if this is what closed it and the delete is unconfirmed, the
   * `break` throws the {@link UnconfirmedDeleteError} (when the loop body threw, its own error
   * wins and the outcome is on {@link NatMapping.closed}). An invalid request or option throws
   * from the loop at its first step. Each iteration is independent; ending any one closes the
   * mapping for all.
   *
   * @example
   * ```ts
   * for await (const state of service.newMapping('tcp', 8080)) {
   *   console.log(state.status, state.externalPort);
   *   if (state.status === 'mapped') break; // deletes the mapping; throws UnconfirmedDeleteError if not confirmed
   * }
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<MappingState>;
}

/**
 * Per-mapping choices of {@link NatService.newMapping}.
 *
 * @example
 * ```ts
 * const peer = new AbortController();
 * service.newMapping('udp', 4001, { externalPort: 14001, lifetimeSeconds: 300, signal: peer.signal });
 * peer.abort(); // this mapping is deleted; the others stay
 * ```
 */
export interface NewMappingOptions {
  readonly externalPort?: number;
  readonly description?: string;
  /** Default 60 s (go-libp2p-nat's MappingDuration), renewed every 20 s. */
  readonly lifetimeSeconds?: number;
  /**
   * Aborting it closes this mapping, as {@link NatMapping.close} does (a graceful stop: delete,
   * last `unmapped` state), and throws nothing: the outcome is on {@link NatMapping.closed}.
   * Already aborted: the mapping is closed at once and nothing is sent to the gateway.
   */
  readonly signal?: AbortSignal;
}

/**
 * A long-running service that keeps mappings on one NAT: go-libp2p-nat's `NAT`.
 *
 * @example
 * ```ts
 * const service = natService(discoverNat());
 * const mapping = service.newMapping('udp', 4001);
 * service.states$.subscribe((states) => console.log(states.map((s) => `${s.internalPort}:${s.status}`).join(' ')));
 * // on shutdown: deletes every mapping
 * try {
 *   await service.close();
 * } catch (e) {
 *   if (e instanceof UnconfirmedDeleteError) for (const d of e.deletes) console.error(d.protocol, d.externalPort, d.leaseEndsAtMs);
 * }
 * ```
 */
export interface NatService {
  /**
   * Starts mapping `internalPort`; the mapping is kept and renewed until closed (by its
   * `signal`, its `close()`, or the service's). Throws once the service is closed or closing
   * (after `close()` or its signal aborted).
   */
  newMapping(protocol: MappingProtocol, internalPort: number, options?: NewMappingOptions): NatMapping;
  /** The mappings not closed yet, in creation order. */
  mappings(): readonly NatMapping[];
  /**
   * The latest state of every mapping not closed yet ({@link NatService.mappings}), in creation
   * order; a new frozen array each call.
   *
   * @example
   * ```ts
   * const mapped = service.snapshot().filter((s) => s.status === 'mapped').length;
   * ```
   */
  snapshot(): readonly MappingState[];
  /**
   * The whole set of states, as {@link NatService.snapshot}, on subscribe and again on every
   * change: a state of any mapping, a mapping added, a mapping removed once closed (after its
   * last `unmapped` state was emitted in the set). Creation order. Completes when the service
   * is closed (every mapping's close settled), after a last emission of the empty set;
   * subscribed after that: the empty set, then complete. Never errors (a mapping with an invalid
   * request shows as `unmapped` with that error; its own `state$` errors).
   *
   * @example
   * ```ts
   * service.states$.subscribe((states) => render(states)); // e.g. one row per mapping
   * ```
   */
  readonly states$: Observable<readonly MappingState[]>;
  /**
   * Settles once the service is closed, by {@link NatService.close} or its `signal`, as
   * `close()` does. Never an unhandled rejection: where nobody waits for it, an unconfirmed
   * delete after an abort is only seen here (and on each mapping's last state).
   *
   * @example
   * ```ts
   * const service = natService(nat, { signal: shutdown.signal });
   * service.closed.catch((e: unknown) => { if (e instanceof UnconfirmedDeleteError) console.error(e.message); });
   * ```
   */
  readonly closed: Promise<void>;
  /**
   * Closes every mapping still open (see {@link NatMapping.close}), all at once, and refuses new
   * mappings from then on. Resolves when every delete was confirmed; otherwise, once every
   * mapping's close has settled, rejects with one {@link UnconfirmedDeleteError} listing the
   * unconfirmed deletes of all mappings open when it started. Calling it again, or after the
   * signal aborted, settles as the first close ({@link NatService.closed}).
   */
  close(): Promise<void>;
}

/**
 * Options of {@link natService}: those of {@link mapPort} for every mapping, the close bound and an abort signal.
 *
 * @example
 * ```ts
 * const service = natService(discoverNat(), { signal: shutdown.signal, closeTimeoutMs: 8_000, teardownTimeoutMs: 3_000 });
 * ```
 */
export interface NatServiceOptions extends Omit<MapPortOptions, 'stop'> {
  /**
   * Longest a {@link NatMapping.close} waits for its mapping stream to end, from the call, in ms
   * on the scheduler's clock; when it passes, the close rejects with an
   * {@link UnconfirmedDeleteError} (see there). A shutdown budget: the core bounds its own
   * teardown (`teardownTimeoutMs` for an add in flight, then as much for each delete, and
   * deletes to one gateway may go one at a time), and the default, `(n + 1) ×
   * teardownTimeoutMs + 5 000` for `n` mappings open when the close starts (25 000 ms for one
   * mapping with the default `teardownTimeoutMs`), lets the core's answer, which names exactly
   * what is unconfirmed, arrive first. Set it lower to give up sooner (a process manager that
   * kills after 10 s); `Infinity` waits for the core alone. A number > 0, else
   * {@link natService} throws {@link InvalidOptionError}.
   */
  readonly closeTimeoutMs?: number;
  /**
   * Aborting it closes the service, as {@link NatService.close} does (every mapping deleted,
   * new mappings refused), and throws nothing: the outcome is on {@link NatService.closed}.
   * Already aborted: the service starts closed.
   */
  readonly signal?: AbortSignal;
}

/** Longest delay a timer can wait: Node fires a longer one after 1 ms. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** A promise settled from outside, marked handled: its rejection is for whoever asks. */
function outcome(): { readonly promise: Promise<void>; settle(result: Promise<void>): void } {
  let settle!: (result: Promise<void>) => void;
  const promise = new Promise<void>((resolve) => (settle = resolve));
  promise.catch(() => undefined);
  return { promise, settle };
}

/**
 * Creates a {@link NatService} on a NAT, or on a discovery Observable (discovered once and shared
 * by every mapping; discovered again when a gateway is lost). A source that never completes
 * (`discoverNat({ followNetwork: true })`) is subscribed while some mapping uses it and let go with
 * the last one (a later mapping subscribes it again). Throws {@link InvalidOptionError}
 * when `closeTimeoutMs` is not a number > 0; the other options are checked by {@link mapPort}
 * (a mapping's stream then errors at once with {@link InvalidOptionError}).
 *
 * @example
 * ```ts
 * import { extIp, natService } from 'rxnat';
 * const controller = new AbortController();
 * const service = natService(extIp('203.0.113.7'), { signal: controller.signal });
 * const mapping = service.newMapping('tcp', 8080);
 * console.log(mapping.externalPort, service.snapshot().length); // 8080 1
 * controller.abort(); // closes the service: deletes every mapping
 * await service.closed; // rejects with UnconfirmedDeleteError if a delete was not confirmed
 * ```
 */
export function natService(nat: Nat | Observable<Nat>, options: NatServiceOptions = {}): NatService {
  const { closeTimeoutMs, signal: serviceSignal, ...mapOptions } = options;
  if (closeTimeoutMs !== undefined && (typeof closeTimeoutMs !== 'number' || Number.isNaN(closeTimeoutMs) || closeTimeoutMs <= 0)) {
    throw new InvalidOptionError('closeTimeoutMs', `closeTimeoutMs ${String(closeTimeoutMs)} is not a number of ms > 0 (Infinity: no bound)`);
  }
  /** The bound of a close started now: as given, else above the core's for every mapping still open. */
  const closeBoundMs = (): number => closeTimeoutMs ?? defaultCloseTimeoutMs(options.teardownTimeoutMs, open.size);
  const scheduler = options.scheduler ?? asyncScheduler;
  // The mappings share one subscription of a source of NATs, replayed to each. refCount: a source
  // that never completes (a network watch) is unsubscribed once no mapping holds it, so the one a
  // gateway loss replaces (`shared = null` below) ends with its last mapping, and `close()` ends
  // it; a completed source is still replayed (share does not reset once complete).
  let shared: Observable<Nat> | null = null;
  const source$: Observable<Nat> = isObservable(nat)
    ? defer(() => (shared ??= nat.pipe(shareReplay({ bufferSize: 1, refCount: true }))))
    : of(nat);
  const open = new Set<NatMapping>();
  let closed = false;

  const snapshot = (): readonly MappingState[] => Object.freeze([...open].map((m) => m.state));
  const set$ = new BehaviorSubject<readonly MappingState[]>(snapshot());
  let setEnded = false;
  const publish = (): void => {
    if (!setEnded) set$.next(snapshot());
  };
  const states$: Observable<readonly MappingState[]> = defer(() => (setEnded ? of(snapshot()) : set$.asObservable()));

  const newMapping = (protocol: MappingProtocol, internalPort: number, mappingOptions: NewMappingOptions = {}): NatMapping => {
    if (closed) throw new Error('this NAT service is closed');
    const { signal, ...requestOptions } = mappingOptions;
    const stop = new Subject<void>();
    let latest: MappingState = unestablished(protocol, internalPort, 'mapping', null, null);
    const state$ = new BehaviorSubject<MappingState>(latest);
    const pending = new PendingDelete({
      externalPort: requestOptions.externalPort ?? internalPort,
      lifetimeSeconds: requestOptions.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS,
    });
    /** In the service's set (from creation until its close settled). */
    let listed = false;
    /** A state of the mapping: for its own stream, and for the service's set while it is in it. */
    const show = (state: MappingState): void => {
      if (sameState(latest, state)) return; // the core's first state may repeat the one made up here
      latest = state;
      state$.next(state);
      if (listed) publish();
    };
    // Told synchronously when the stream ends, so a bound on a virtual scheduler never wins a race
    // that the stream already won in the same frame.
    let ended = false;
    const whenEnded: Array<() => void> = [];
    const markEnded = (): void => {
      ended = true;
      for (const callback of whenEnded.splice(0)) callback();
    };
    let errored = false;
    // An aborted signal stops the stream at subscribe: it ends at once, before anything is sent.
    const stop$ = signal?.aborted ? of(undefined) : stop;
    const subscription: Subscription = mapPort(source$, { protocol, internalPort, ...requestOptions }, { ...mapOptions, stop: stop$ }).subscribe({
      next: (state) => {
        if (state.error instanceof GatewayLostError) shared = null; // the next subscription rediscovers
        pending.observe(state);
        show(state);
      },
      error: (error: unknown) => {
        errored = true;
        latest = unestablished(protocol, internalPort, 'unmapped', null, error instanceof Error ? error : new Error(String(error)));
        if (listed) publish();
        state$.error(error);
        markEnded();
      },
      complete: () => markEnded(),
    });

    /** The core's verdict on the stream's last state: its UnconfirmedDeleteError, if any. */
    const verdict = (): UnconfirmedDeleteError | null =>
      !errored && latest.status === 'unmapped' && latest.error instanceof UnconfirmedDeleteError ? latest.error : null;

    let completed = false;
    const stateStream = defer(() => (completed ? of(latest) : state$.asObservable()));
    const result = outcome();
    let closing = false;
    let closeReturned: Promise<void> | undefined;
    const onAbort = (): void => startClose();
    const startClose = (): void => {
      if (closing) return;
      closing = true;
      result.settle(
        new Promise<void>((resolve, reject) => {
          let settled = false;
          let bound: Subscription | undefined;
          const settle = (unconfirmed: UnconfirmedDeleteError | null): void => {
            if (settled) return;
            settled = true;
            bound?.unsubscribe();
            signal?.removeEventListener('abort', onAbort);
            // After the bound the stream may still be deleting: unsubscribing leaves that to the core.
            subscription.unsubscribe();
            if (!errored) {
              // Given up waiting: the last state says so (the core's own last state was not seen).
              if (!ended) show({ ...unestablished(protocol, internalPort, 'unmapped', latest.backend, unconfirmed), renewals: latest.renewals });
              completed = true;
              state$.complete();
            }
            open.delete(mapping);
            listed = false;
            publish();
            if (unconfirmed) reject(unconfirmed);
            else resolve();
          };
          if (errored) {
            // Ended at subscribe (invalid request or option): nothing was sent, nothing to delete.
            settle(null);
            return;
          }
          if (ended) {
            settle(verdict());
            return;
          }
          whenEnded.push(() => settle(verdict()));
          const boundMs = closeBoundMs();
          if (boundMs <= MAX_TIMER_DELAY_MS) {
            bound = timer(boundMs, scheduler).subscribe(() => {
              const entry = pending.unconfirmed(scheduler.now(), (gateway) => new CloseTimeoutError(gateway, boundMs));
              settle(entry ? new UnconfirmedDeleteError([entry]) : null);
            });
          }
          stop.next();
        }),
      );
    };

    const mapping: NatMapping = {
      protocol,
      internalPort,
      get externalPort() {
        return latest.externalPort;
      },
      get state() {
        return latest;
      },
      // Subscribed once closed: the last state, then complete.
      state$: stateStream,
      closed: result.promise,
      externalAddr() {
        const { status, externalIp, externalPort } = latest;
        if ((status !== 'mapped' && status !== 'degraded') || externalIp === null || externalPort === 0) throw new NoMappingError();
        return { ip: externalIp, port: externalPort };
      },
      close() {
        startClose();
        return (closeReturned ??= result.promise.then(() => undefined));
      },
      [Symbol.asyncIterator]() {
        // Leaving the loop closes the mapping; when something else closed it, that one reports.
        return latestValues(stateStream, () => (closing ? result.promise.catch(() => undefined) : mapping.close()));
      },
    };
    open.add(mapping);
    listed = true;
    publish();
    if (signal?.aborted) startClose();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return mapping;
  };

  const serviceResult = outcome();
  let serviceCloseReturned: Promise<void> | undefined;
  const onServiceAbort = (): void => startServiceClose();
  const startServiceClose = (): void => {
    if (closed) return;
    closed = true;
    serviceSignal?.removeEventListener('abort', onServiceAbort);
    serviceResult.settle(
      (async () => {
        const results = await Promise.allSettled([...open].map((m) => m.close()));
        // Every mapping's close removed it from the set, which is now empty.
        setEnded = true;
        set$.complete();
        const deletes: UnconfirmedDelete[] = [];
        for (const result of results) {
          if (result.status === 'fulfilled') continue;
          if (!(result.reason instanceof UnconfirmedDeleteError)) throw result.reason;
          deletes.push(...result.reason.deletes);
        }
        if (deletes.length > 0) throw new UnconfirmedDeleteError(deletes);
      })(),
    );
  };
  if (serviceSignal?.aborted) startServiceClose();
  else serviceSignal?.addEventListener('abort', onServiceAbort, { once: true });

  return {
    newMapping,
    mappings: () => [...open],
    snapshot,
    states$,
    closed: serviceResult.promise,
    close() {
      startServiceClose();
      return (serviceCloseReturned ??= serviceResult.promise.then(() => undefined));
    },
  };
}
