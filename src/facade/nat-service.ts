import { BehaviorSubject, defer, isObservable, lastValueFrom, of, shareReplay, Subject, timeout, type Observable, type Subscription } from 'rxjs';
import { GatewayLostError, NoMappingError } from '../errors.js';
import { mapPort, type MappingState, type MapPortOptions } from '../core/map-port.js';
import type { MappingProtocol, Nat } from '../core/nat.js';

/**
 * One mapping of a {@link NatService}: go-libp2p-nat's `Mapping`, for code that is not reactive.
 *
 * @example
 * ```ts
 * const mapping = service.newMapping('tcp', 4001);
 * mapping.state$.subscribe((s) => console.log(s.status));
 * // later
 * const { ip, port } = mapping.externalAddr(); // throws NoMappingError until mapped
 * await mapping.close();
 * ```
 */
export interface NatMapping {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** The external port, 0 while the mapping is not established. */
  readonly externalPort: number;
  /** The latest state. */
  readonly state: MappingState;
  /** Every state from now on, starting with the latest. */
  readonly state$: Observable<MappingState>;
  /** The external address and port; throws {@link NoMappingError} while the mapping is not established. */
  externalAddr(): { readonly ip: string; readonly port: number };
  /** Deletes the mapping and resolves once the gateway confirmed (or the close bound passed). */
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
 * await service.close();
 * ```
 */
export interface NatService {
  /** Starts mapping `internalPort`; the mapping is kept and renewed until closed. */
  newMapping(protocol: MappingProtocol, internalPort: number, options?: NewMappingOptions): NatMapping;
  /** The mappings not closed yet. */
  mappings(): readonly NatMapping[];
  /** Closes (deletes) every mapping; resolves when all are gone. New mappings are refused after. */
  close(): Promise<void>;
}

/** Options of {@link natService}: those of {@link mapPort} for every mapping, and the close bound. */
export interface NatServiceOptions extends Omit<MapPortOptions, 'stop'> {
  /** Longest a `close()` waits for the gateway. Default 10 000 ms (go-libp2p-nat's bound). */
  readonly closeTimeoutMs?: number;
}

/**
 * Creates a {@link NatService} on a NAT, or on a discovery Observable (discovered once and shared
 * by every mapping; discovered again when a gateway is lost).
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
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  let shared: Observable<Nat> | null = null;
  const source$: Observable<Nat> = isObservable(nat)
    ? defer(() => (shared ??= nat.pipe(shareReplay({ bufferSize: 1, refCount: false }))))
    : of(nat);
  const open = new Set<NatMapping>();
  let closed = false;

  const newMapping = (protocol: MappingProtocol, internalPort: number, mappingOptions: NewMappingOptions = {}): NatMapping => {
    if (closed) throw new Error('this NAT service is closed');
    const stop = new Subject<void>();
    const state$ = new BehaviorSubject<MappingState>({
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
    });
    const done = new Subject<void>();
    const subscription: Subscription = mapPort(source$, { protocol, internalPort, ...mappingOptions }, { ...options, stop }).subscribe({
      next: (state) => {
        if (state.error instanceof GatewayLostError) shared = null; // the next subscription rediscovers
        state$.next(state);
      },
      error: (error: unknown) => {
        state$.error(error);
        done.complete();
      },
      complete: () => done.complete(),
    });
    let closing: Promise<void> | undefined;
    const mapping: NatMapping = {
      protocol,
      internalPort,
      get externalPort() {
        return state$.value.externalPort;
      },
      get state() {
        return state$.value;
      },
      state$: state$.asObservable(),
      externalAddr() {
        const { status, externalIp, externalPort } = state$.value;
        if ((status !== 'mapped' && status !== 'degraded') || externalIp === null || externalPort === 0) throw new NoMappingError();
        return { ip: externalIp, port: externalPort };
      },
      close() {
        closing ??= (async () => {
          const finished = lastValueFrom(done.pipe(timeout({ first: closeTimeoutMs, with: () => of(undefined) })), { defaultValue: undefined });
          stop.next();
          await finished;
          subscription.unsubscribe();
          open.delete(mapping);
          if (!state$.closed && !state$.hasError) state$.complete();
        })();
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
      await Promise.all([...open].map((m) => m.close()));
    },
  };
}
