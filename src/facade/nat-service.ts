import { asyncScheduler, BehaviorSubject, defer, isObservable, of, shareReplay, Subject, timer, type Observable, type Subscription } from 'rxjs';
import { GatewayLostError, InvalidOptionError, NoMappingError, UnconfirmedDeleteError, type UnconfirmedDelete } from '../errors.js';
import { mapPort, type MappingState, type MapPortOptions } from '../core/map-port.js';
import type { MappingProtocol, Nat } from '../core/nat.js';
import { DEFAULT_LIFETIME_SECONDS } from '../core/validate.js';
import { CloseTimeoutError, defaultCloseTimeoutMs, PendingDelete } from './pending-delete.js';

export { CloseTimeoutError } from './pending-delete.js';

/**
 * One mapping of a {@link NatService}: go-libp2p-nat's `Mapping`, for code that is not reactive.
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
export interface NatMapping {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** The external port, 0 while the mapping is not established. */
  readonly externalPort: number;
  /** The latest state. */
  readonly state: MappingState;
  /** Every state from now on, starting with the latest. Completes when the mapping is closed; errors with an invalid request or option. */
  readonly state$: Observable<MappingState>;
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
   * same promise.
   */
  close(): Promise<void>;
}

/** Per-mapping choices of {@link NatService.newMapping}. */
export interface NewMappingOptions {
  readonly externalPort?: number;
  readonly description?: string;
  /** Default 60 s (go-libp2p-nat's MappingDuration), renewed every 20 s. */
  readonly lifetimeSeconds?: number;
}

/**
 * A long-running service that keeps mappings on one NAT: go-libp2p-nat's `NAT`.
 *
 * @example
 * ```ts
 * const service = natService(discoverNat());
 * const mapping = service.newMapping('udp', 4001);
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
   * Starts mapping `internalPort`; the mapping is kept and renewed until closed. Throws once the
   * service is closed.
   */
  newMapping(protocol: MappingProtocol, internalPort: number, options?: NewMappingOptions): NatMapping;
  /** The mappings not closed yet. */
  mappings(): readonly NatMapping[];
  /**
   * Closes every mapping still open (see {@link NatMapping.close}), all at once, and refuses new
   * mappings from then on. Resolves when every delete was confirmed; otherwise, once every
   * mapping's close has settled, rejects with one {@link UnconfirmedDeleteError} listing the
   * unconfirmed deletes of all mappings.
   */
  close(): Promise<void>;
}

/** Options of {@link natService}: those of {@link mapPort} for every mapping, and the close bound. */
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
}

/** Longest delay a timer can wait: Node fires a longer one after 1 ms. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Creates a {@link NatService} on a NAT, or on a discovery Observable (discovered once and shared
 * by every mapping; discovered again when a gateway is lost). Throws {@link InvalidOptionError}
 * when `closeTimeoutMs` is not a number > 0; the other options are checked by {@link mapPort}
 * (a mapping's stream then errors at once with {@link InvalidOptionError}).
 *
 * @example
 * ```ts
 * import { extIp, natService } from 'rxnat';
 * const service = natService(extIp('203.0.113.7'));
 * const mapping = service.newMapping('tcp', 8080);
 * console.log(mapping.externalPort); // 8080
 * await service.close();
 * ```
 */
export function natService(nat: Nat | Observable<Nat>, options: NatServiceOptions = {}): NatService {
  const { closeTimeoutMs, ...mapOptions } = options;
  if (closeTimeoutMs !== undefined && (typeof closeTimeoutMs !== 'number' || Number.isNaN(closeTimeoutMs) || closeTimeoutMs <= 0)) {
    throw new InvalidOptionError('closeTimeoutMs', `closeTimeoutMs ${String(closeTimeoutMs)} is not a number of ms > 0 (Infinity: no bound)`);
  }
  /** The bound of a close started now: as given, else above the core's for every mapping still open. */
  const closeBoundMs = (): number => closeTimeoutMs ?? defaultCloseTimeoutMs(options.teardownTimeoutMs, open.size);
  const scheduler = options.scheduler ?? asyncScheduler;
  let shared: Observable<Nat> | null = null;
  const source$: Observable<Nat> = isObservable(nat)
    ? defer(() => (shared ??= nat.pipe(shareReplay({ bufferSize: 1, refCount: false }))))
    : of(nat);
  const open = new Set<NatMapping>();
  let closed = false;

  const newMapping = (protocol: MappingProtocol, internalPort: number, mappingOptions: NewMappingOptions = {}): NatMapping => {
    if (closed) throw new Error('this NAT service is closed');
    const stop = new Subject<void>();
    let latest: MappingState = {
      status: 'mapping',
      protocol,
      internalPort,
      externalPort: 0,
      externalIp: null,
      lifetimeSeconds: null,
      backend: null,
      doubleNat: false,
      renewals: 0,
      error: null,
    };
    const state$ = new BehaviorSubject<MappingState>(latest);
    const pending = new PendingDelete({
      externalPort: mappingOptions.externalPort ?? internalPort,
      lifetimeSeconds: mappingOptions.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS,
    });
    // Told synchronously when the stream ends, so a bound on a virtual scheduler never wins a race
    // that the stream already won in the same frame.
    let ended = false;
    const whenEnded: Array<() => void> = [];
    const markEnded = (): void => {
      ended = true;
      for (const callback of whenEnded.splice(0)) callback();
    };
    let errored = false;
    const subscription: Subscription = mapPort(source$, { protocol, internalPort, ...mappingOptions }, { ...mapOptions, stop }).subscribe({
      next: (state) => {
        if (state.error instanceof GatewayLostError) shared = null; // the next subscription rediscovers
        latest = state;
        pending.observe(state);
        state$.next(state);
      },
      error: (error: unknown) => {
        errored = true;
        state$.error(error);
        markEnded();
      },
      complete: () => markEnded(),
    });

    /** The core's verdict on the stream's last state: its UnconfirmedDeleteError, if any. */
    const verdict = (): UnconfirmedDeleteError | null =>
      !errored && latest.status === 'unmapped' && latest.error instanceof UnconfirmedDeleteError ? latest.error : null;

    let closing: Promise<void> | undefined;
    const mapping: NatMapping = {
      protocol,
      internalPort,
      get externalPort() {
        return latest.externalPort;
      },
      get state() {
        return latest;
      },
      state$: state$.asObservable(),
      externalAddr() {
        const { status, externalIp, externalPort } = latest;
        if ((status !== 'mapped' && status !== 'degraded') || externalIp === null || externalPort === 0) throw new NoMappingError();
        return { ip: externalIp, port: externalPort };
      },
      close() {
        closing ??= new Promise<void>((resolve, reject) => {
          let settled = false;
          let bound: Subscription | undefined;
          const settle = (unconfirmed: UnconfirmedDeleteError | null): void => {
            if (settled) return;
            settled = true;
            bound?.unsubscribe();
            // After the bound the stream may still be deleting: unsubscribing leaves that to the core.
            subscription.unsubscribe();
            open.delete(mapping);
            if (!errored) state$.complete();
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
        });
        return closing;
      },
    };
    open.add(mapping);
    return mapping;
  };

  return {
    newMapping,
    mappings: () => [...open],
    async close() {
      closed = true;
      const results = await Promise.allSettled([...open].map((m) => m.close()));
      const deletes: UnconfirmedDelete[] = [];
      for (const result of results) {
        if (result.status === 'fulfilled') continue;
        if (!(result.reason instanceof UnconfirmedDeleteError)) throw result.reason;
        deletes.push(...result.reason.deletes);
      }
      if (deletes.length > 0) throw new UnconfirmedDeleteError(deletes);
    },
  };
}
