import { defer, isObservable, Observable, of, take, type Subscription } from 'rxjs';
import { GatewayLostError, InvalidMappingRequestError, InvalidOptionError, ProtocolError } from '../errors.js';
import { backoffDelayMs } from './backoff.js';
import { sameState, unestablished, type MappingState } from './mapping-state.js';
import type { MappingRequest, Nat } from './nat.js';
import { protocolOf } from './gateway-context.js';
import { joinEntry, type Membership } from './session-runner.js';
import type { SessionConfig } from './session.js';
import { markUnusable } from './unusable.js';
import { resolveMappingRequest, resolveMapPortOptions, type MapPortOptions, type ResolvedMapPortOptions, type ResolvedMappingRequest } from './validate.js';

export type { MapPortOptions } from './validate.js';

export type { MappingState, MappingStatus } from './mapping-state.js';


/**
 * Maps a port on a NAT gateway, as a cold Observable of {@link MappingState}s.
 *
 * - Nothing happens before subscribe. Streams asking for the same protocol and internal port on
 *   one gateway share one router entry (the first one's request applies), deleted when the last
 *   of them ends; any other subscription adds its own mapping.
 * - `mapped` means the gateway holds the mapping now: its lease runs from each grant, and a
 *   renewal not granted by the lease's end turns the state `unmapped` at that moment. The mapping
 *   is renewed at a third of the lease the gateway granted, asking for the port granted before.
 *   The external address is watched (every 15 s, shared by all streams on the gateway); a change
 *   is emitted at once and re-adds the mapping; an address such as `0.0.0.0` is not `mapped`.
 * - Gateway and network errors never end the stream: it retries with capped exponential backoff
 *   and jitter, reports `degraded` while the last lease holds and `unmapped` after. Only an
 *   invalid request or option errors, at subscribe ({@link InvalidMappingRequestError},
 *   {@link InvalidOptionError}).
 * - Unsubscribing deletes the last grant and every port asked for in an add that got no valid
 *   answer (it may exist); an add in flight is waited for (bounded by `teardownTimeoutMs`).
 * - Given an Observable of NATs, the mapping follows it: a new NAT replaces the old one (the old
 *   mapping is deleted best-effort). A gateway that keeps refusing connections or stops answering
 *   is rediscovered by subscribing to the source again. A refusal that means the protocol will
 *   not map there (`GatewayError.notHere`) rediscovers at once, and discovery skips that NAT for
 *   a while (five minutes, `UNUSABLE_FOR_MS`), so the mapping moves to another backend.
 * - Where the NAT can check its table (UPnP), the mapping is checked every `checkIntervalMs`
 *   (30 s); an entry the router dropped turns the state `unmapped` and is re-added.
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
    const settings = resolveMapPortOptions(options);
    if (!isObservable(nat) && !isNat(nat)) throw new InvalidOptionError('nat', 'the first argument must be a Nat or an Observable of Nats');
    const nat$ = isObservable(nat) ? nat : of(nat);
    return new Observable<MappingState>((subscriber) => holdMapping(subscriber, nat$, isObservable(nat), resolved, settings));
  });
}

/**
 * One stream's life: follow the NAT source, hold the router entry of the latest NAT, rediscover
 * after a loss or a failed discovery (each attempt scheduled afresh: nothing nests, whatever the
 * number of failures), and stop or tear down on request.
 */
function holdMapping(
  subscriber: { next(state: MappingState): void; error(error: unknown): void; complete(): void; readonly closed: boolean },
  nat$: Observable<Nat>,
  fromSource: boolean,
  request: ResolvedMappingRequest,
  settings: ResolvedMapPortOptions,
): () => void {
  const { scheduler, logger } = settings;
  let last: MappingState | null = null;
  let backend: string | null = null;
  let failures = 0;
  let membership: Membership | null = null;
  let source: Subscription | null = null;
  let retry: Subscription | null = null;
  let stopping = false;

  const emit = (state: MappingState): void => {
    if (subscriber.closed || (last !== null && sameState(last, state))) return;
    last = state;
    backend = state.backend;
    if (state.status === 'mapped') failures = 0;
    subscriber.next(state);
  };

  const end = (state: MappingState): void => {
    emit(state);
    cleanup();
    subscriber.complete();
  };

  const cleanup = (): void => {
    source?.unsubscribe();
    source = null;
    retry?.unsubscribe();
    retry = null;
  };

  const again = (error: Error, immediate = false): void => {
    failures++;
    const delay = immediate ? 0 : backoffDelayMs(failures, settings.retry, settings.random);
    logger.debug('rxnat:map', `no gateway for ${request.protocol}/${request.internalPort}; retrying in ${delay} ms`, { error });
    emit(unestablished(request.protocol, request.internalPort, 'unmapped', backend, error));
    source?.unsubscribe();
    source = null;
    retry?.unsubscribe();
    retry = null;
    // The subscriber may have left or stopped on the state just emitted: then nothing follows.
    if (subscriber.closed || stopping) return;
    retry = scheduler.schedule(() => {
      retry = null;
      follow();
    }, delay);
  };

  const join = (nat: Nat): void => {
    // A new NAT replaces the old one: the old mapping is deleted (best-effort) by leaving it.
    membership?.leave(false);
    membership = null;
    // A NAT of the other address family can map nothing for this request: known before anything
    // is sent. Given as such, it is the caller's mistake; from a source, the next NAT may fit.
    const natFamily = nat.family ?? 'ipv4';
    if (request.family !== undefined && request.family !== natFamily) {
      const message = `${nat.name} maps ${natFamily}; this request is ${request.family}`;
      if (!fromSource) {
        cleanup();
        subscriber.error(new InvalidMappingRequestError('family', message));
      } else {
        again(new ProtocolError(protocolOf(nat), 'family', message, nat.name));
      }
      return;
    }
    const config: SessionConfig = {
      request,
      gateway: nat.name,
      protocol: protocolOf(nat),
      renewFraction: settings.renewFraction,
      retry: settings.retry,
      maxConsecutiveUnreachable: settings.maxConsecutiveUnreachable,
      teardownTimeoutMs: settings.teardownTimeoutMs,
      checkIntervalMs: typeof nat.checkMapping === 'function' ? settings.checkIntervalMs : null,
    };
    const mine: { current: Membership | null; lost: boolean } = { current: null, lost: false };
    const joined = joinEntry(nat, config, settings, {
      // After a failure the stream stays `unmapped` (with its error) until the new entry maps or
      // fails: its first "mapping" would only hide why it is not mapped.
      next: (state) => {
        // (A 'mapping' state never carries an error: a session with one says 'unmapped'.)
        if (state.status === 'mapping' && last?.status === 'unmapped') {
          // Not shown, but the NAT in use is this one now: a failure that follows names it.
          backend = state.backend;
          return;
        }
        emit(state);
      },
      lost: (error) => {
        mine.lost = true;
        if (membership === mine.current) membership = null;
        // A gateway that will not map with this protocol: discovery skips it for a while, and the
        // first time it is marked the mapping moves at once (later marks back off, so a router
        // on which nothing maps is not asked in a loop).
        const refusal = error instanceof GatewayLostError && error.reason === 'refused' && error.cause instanceof Error ? error.cause : null;
        const fresh = refusal !== null && markUnusable(nat, refusal, { registry: settings.gatewayRegistry, scheduler });
        // The state names the gateway's own refusal (its code), not the move.
        again(refusal ?? error, fresh && fromSource);
      },
      closed: (state) => end(state),
    });
    mine.current = joined;
    // The entry tells its first state (and may be lost) before joinEntry returns: a subscriber
    // that left or stopped on that state must not leave the entry behind, nor a lost one be kept.
    // (The teardown below is not set yet while a synchronous source emits during subscribe.)
    if (subscriber.closed) joined.leave(false);
    else if (!mine.lost) membership = joined;
  };

  const follow = (): void => {
    // A stop that emits at subscribe, or a subscriber that took only the first state, asks nothing.
    if (stopping || subscriber.closed) return;
    source = nat$.subscribe({
      next: (nat) => {
        if (!stopping && !subscriber.closed) join(nat);
      },
      error: (error: unknown) => {
        if (error instanceof InvalidMappingRequestError || error instanceof InvalidOptionError) {
          cleanup();
          subscriber.error(error);
          return;
        }
        again(error instanceof Error ? error : new Error(String(error)));
      },
    });
  };

  const stop = (): void => {
    if (subscriber.closed || stopping) return;
    stopping = true;
    logger.debug('rxnat:map', `stopping ${request.protocol}/${request.internalPort}`);
    cleanup();
    const held = membership;
    membership = null;
    if (held) held.leave(true);
    else end(unestablished(request.protocol, request.internalPort, 'unmapped', backend, null));
  };

  // A source (discovery) gets a first state while it searches; a NAT given as such answers at once.
  if (fromSource) emit(unestablished(request.protocol, request.internalPort, 'mapping', null, null));
  const stopWatch = settings.stop?.pipe(take(1)).subscribe(stop);
  follow();

  return () => {
    stopWatch?.unsubscribe();
    cleanup();
    const held = membership;
    membership = null;
    held?.leave(false);
  };
}

function isNat(value: unknown): value is Nat {
  return typeof value === 'object' && value !== null && typeof (value as Nat).addMapping === 'function' && typeof (value as Nat).deleteMapping === 'function';
}
